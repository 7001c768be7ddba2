-- Reverts 0010: the permission map.
drop function watchium_private.require_room_permission(text, text, text);
drop function watchium_private.has_room_permission(text, text, text);
drop function watchium_private.room_permission_min_role(text, text);
drop function watchium_private.role_rank(text);
drop table public.room_permissions;
drop table watchium_private.room_permission_catalogue;
