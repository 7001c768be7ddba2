drop table public.sync_states;
drop table public.comments;
drop table watchium_private.member_presence;
drop table public.room_members;
drop function watchium_private.tg_room_members__create_presence();
drop table watchium_private.room_secrets;
drop table public.rooms;
drop function watchium_private.tg__touch_updated_at();
