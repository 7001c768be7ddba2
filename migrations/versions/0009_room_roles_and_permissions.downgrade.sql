-- Reverts 0009: the permission map and room roles.
drop function watchium_private.require_room_permission(text, text, text);
drop function watchium_private.has_room_permission(text, text, text);
drop function watchium_private.room_permission_min_role(text, text);
drop function watchium_private.role_rank(text);
drop table public.room_permissions;
drop table watchium_private.room_permission_catalogue;
drop trigger _050_sync_role on public.room_members;
drop function watchium_private.tg_room_members__sync_role();
-- Its two check constraints go with the column.
alter table public.room_members drop column role;
