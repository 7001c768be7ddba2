-- Reverts 0010: the permission map.
-- Calls that began before the revisions above were downgraded may still run
-- their bodies, which call the helpers dropped here: they end first.
select watchium_private.await_older_transactions();

-- Lock order: the busy table first, then the one dropped here. Dropping a
-- table with a foreign key locks the table it references too; clients lock
-- public.rooms first (a delete there cascades into the other), so taking them in
-- that order, at once, closes no deadlock with them.
lock table public.rooms, public.room_permissions, watchium_private.room_permission_catalogue in access exclusive mode;

drop function watchium_private.require_room_permission(text, text, text);
drop function watchium_private.has_room_permission(text, text, text);
drop function watchium_private.room_permission_min_role(text, text);
drop function watchium_private.role_rank(text);
drop table public.room_permissions;
drop table watchium_private.room_permission_catalogue;
