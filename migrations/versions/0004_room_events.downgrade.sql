drop function watchium_private.expire_room_events();
drop function watchium_private.read_room_event(text, bigint);
drop function watchium_private.read_room_events(text, bigint, xid8);
drop function watchium_private.emit_room_event(text, text, jsonb);
drop function watchium_private.commit_durably();
drop function watchium_private.room_event_delivery();
drop function watchium_private.realtime_available();
drop table watchium_private.room_events;
delete from watchium_private.settings where key in ('room_event_retention', 'room_event_delivery');
