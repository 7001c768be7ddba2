drop table public.sync_states;
drop table public.comments;
drop table public.room_members;
drop table watchium_private.room_secrets;
drop table public.rooms;
drop function watchium_private.tg__touch_updated_at();
