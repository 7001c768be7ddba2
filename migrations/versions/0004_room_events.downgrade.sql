drop function watchium_private.emit_room_event(text, text, jsonb);
drop function watchium_private.realtime_available();
drop table watchium_private.room_events;
delete from watchium_private.settings where key = 'room_event_retention';
