-- Reverts 0009: room roles.
drop trigger _050_sync_role on public.room_members;
drop function watchium_private.tg_room_members__sync_role();
-- Its two check constraints go with the column.
alter table public.room_members drop column role;
drop function watchium_private.await_older_transactions();
