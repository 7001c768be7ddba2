-- =============================================================================
-- 0004 room events
--
-- Every room event (playback controls, joins, leaves, host changes, sync
-- status transitions, comments, custom broadcasts) goes through one function,
-- watchium_private.emit_room_event, which
--   1. appends it to watchium_private.room_events (so a listener that was
--      disconnected can catch up by event_id), and
--   2. delivers it: through Supabase Realtime (realtime.send to the private
--      topic room:<room_id>) when the realtime schema is installed, else
--      through NOTIFY on the channel watchium:room:<room_id>.
-- The choice is made at call time, so installing Realtime after these
-- migrations needs no change here.
-- =============================================================================

insert into watchium_private.settings (key, value, description) values
  ('room_event_retention', '"1 hour"',
   'How long room events stay in watchium_private.room_events for listeners to catch up.');

create table watchium_private.room_events (
  event_id   bigint      generated always as identity,
  room_id    text        not null,
  event      text        not null,
  payload    jsonb       not null,
  created_at timestamptz not null default now(),
  constraint room_events_pkey primary key (event_id),
  constraint room_events_event_format_check check (event ~ '^[a-z][a-z0-9_]{0,49}$')
);
comment on table watchium_private.room_events is
  'Log of room events in delivery order, kept for room_event_retention so listeners can catch up after a reconnect (event_id > last seen).';
alter table watchium_private.room_events enable row level security;
revoke all on table watchium_private.room_events from public;

-- Catch-up of one room after a given event.
create index room_events_room_id_event_id_idx
  on watchium_private.room_events (room_id, event_id);
-- Expiry by age.
create index room_events_created_at_idx
  on watchium_private.room_events (created_at);

-- -----------------------------------------------------------------------------
-- watchium_private.realtime_available(): is Supabase Realtime's database
-- broadcast (realtime.send) installed in this database?
-- -----------------------------------------------------------------------------
create function watchium_private.realtime_available()
returns boolean
language sql
stable
set search_path = ''
as $$
  select pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null
$$;
comment on function watchium_private.realtime_available() is
  'True when realtime.send(jsonb, text, text, boolean) exists (Supabase Realtime): room events are then broadcast; otherwise they are sent with NOTIFY.';
revoke all on function watchium_private.realtime_available() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.emit_room_event(room_id, event, payload) -> event_id
--
-- The message is {event_id, room_id, event, payload, sent_at}.
-- NOTIFY payloads must be shorter than 8000 bytes: a larger message is sent as
-- {event_id, room_id, event, truncated: true} and the listener reads the full
-- payload from the log, so a big payload never fails the transaction.
-- Delivery happens at commit; a rolled-back transaction sends nothing.
-- -----------------------------------------------------------------------------
create function watchium_private.emit_room_event(p_room_id text, p_event text, p_payload jsonb)
returns bigint
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_event_id bigint;
  v_message  jsonb;
  v_text     text;
begin
  insert into watchium_private.room_events (room_id, event, payload)
  values (p_room_id, p_event, coalesce(p_payload, '{}'::jsonb))
  returning event_id into v_event_id;

  v_message := pg_catalog.jsonb_build_object(
    'event_id', v_event_id,
    'room_id', p_room_id,
    'event', p_event,
    'payload', coalesce(p_payload, '{}'::jsonb),
    'sent_at', pg_catalog.now()
  );

  if watchium_private.realtime_available() then
    -- Dynamic, and built by format(): realtime.send may not exist when this
    -- function is created or checked.
    execute pg_catalog.format('select %I.send($1, $2, $3, true)', 'realtime')
      using v_message, p_event, 'room:' || p_room_id;
  else
    v_text := v_message::text;
    if pg_catalog.octet_length(v_text) >= 8000 then
      v_text := pg_catalog.jsonb_build_object(
        'event_id', v_event_id, 'room_id', p_room_id, 'event', p_event, 'truncated', true
      )::text;
    end if;
    perform pg_catalog.pg_notify('watchium:room:' || p_room_id, v_text);
  end if;

  return v_event_id;
end;
$$;
comment on function watchium_private.emit_room_event(text, text, jsonb) is
  'Logs a room event and delivers it to room:<room_id> (Supabase Realtime) or NOTIFY channel watchium:room:<room_id> (plain PostgreSQL). Returns the event id. Internal: called by the RPC functions and triggers.';
revoke all on function watchium_private.emit_room_event(text, text, jsonb) from public;
