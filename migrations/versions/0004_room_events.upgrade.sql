-- =============================================================================
-- 0004 room events
--
-- Every room event (playback controls, joins, leaves, host changes, sync
-- status transitions, comments, custom broadcasts) goes through one function,
-- watchium_private.emit_room_event, which
--   1. appends it to watchium_private.room_events (so a listener that was
--      disconnected can catch up by event_id), and
--   2. delivers it: through Supabase Realtime (realtime.send to a private
--      topic) when the realtime schema is installed, else through NOTIFY on
--      the channel "watchium:" || topic. The topic (room_event_topic) is
--      room:<room_id> for the database's own events, where members may only
--      receive, and room:<room_id>:members for what members send each other
--      through broadcast_to_room (0006).
-- The choice is made at call time, in one place
-- (watchium_private.room_event_delivery()), so installing Realtime after
-- these migrations needs no change here.
--
-- Ordering and positions. event_id is unique but, like any identity, it is
-- assigned at INSERT, not at COMMIT: an event with a smaller event_id may
-- commit after a larger one. Each row therefore records the id of the
-- transaction that wrote it (xact_id), and readers take events in
-- (xact_id, event_id) order, but only those whose transaction is below the
-- xmin of the reader's snapshot: every transaction with a smaller id has then
-- ended, so no event can ever appear before one already read. The pair
-- (xact_id, event_id) of the last event a consumer handled is its position: a
-- single monotonic value, resumable without loss or duplicates. See
-- watchium_private.read_room_events and docs/realtime.md.
--
-- Trimming. expire_room_events deletes events past room_event_retention and
-- records, per room, the highest position it deleted
-- (watchium_private.room_events_expired), so a reader resuming from an older
-- position is told that events are gone instead of silently skipping them.
-- =============================================================================

insert into watchium_private.settings (key, value, description) values
  ('room_event_retention', '"1 hour"',
   'How long room events stay in watchium_private.room_events for listeners to catch up.'),
  ('room_event_delivery', '"auto"',
   'How room events are delivered: auto (Supabase Realtime when realtime.send exists, else NOTIFY), notify (always NOTIFY), or both (Realtime and NOTIFY, e.g. for a server-side listener on Supabase).');

create table watchium_private.room_events (
  event_id   bigint      generated always as identity,
  room_id    text        not null,
  event      text        not null,
  payload    jsonb       not null,
  created_at timestamptz not null default now(),
  xact_id    xid8        not null default pg_current_xact_id(),
  constraint room_events_pkey primary key (event_id),
  constraint room_events_event_format_check check (event ~ '^[a-z][a-z0-9_]{0,49}$')
);
comment on table watchium_private.room_events is
  'Log of room events in delivery order, kept for room_event_retention so listeners can catch up after a reconnect (event_id > last seen).';
comment on column watchium_private.room_events.xact_id is
  'Top-level transaction that wrote the event; catch-up compares it with the xmin of the reader''s previous snapshot (events may commit out of event_id order).';
alter table watchium_private.room_events enable row level security;
revoke all on table watchium_private.room_events from public;

-- Catch-up of one room after a given event.
create index room_events_room_id_event_id_idx
  on watchium_private.room_events (room_id, event_id);

-- Per room, the highest position (xact_id, event_id) that trimming deleted.
create table watchium_private.room_events_expired (
  room_id    text        not null,
  xact_id    xid8        not null,
  event_id   bigint      not null,
  expired_at timestamptz not null default now(),
  constraint room_events_expired_pkey primary key (room_id)
);
comment on table watchium_private.room_events_expired is
  'Per room, the highest position (xact_id, event_id) deleted from room_events by expire_room_events: a listener resuming from a lower position has lost events and is told so (read_room_events returns "expired"). One row per room whose events were ever trimmed.';
comment on column watchium_private.room_events_expired.room_id is 'The room whose events were trimmed.';
comment on column watchium_private.room_events_expired.xact_id is 'xact_id of the highest deleted position.';
comment on column watchium_private.room_events_expired.event_id is 'event_id of the highest deleted position.';
comment on column watchium_private.room_events_expired.expired_at is 'When trimming last moved this position.';
alter table watchium_private.room_events_expired enable row level security;
revoke all on table watchium_private.room_events_expired from public;
-- Expiry by age.
create index room_events_created_at_idx
  on watchium_private.room_events (created_at);

-- -----------------------------------------------------------------------------
-- watchium_private.realtime_available(): is Supabase Realtime's database
-- broadcast (realtime.send) installed in this database?
-- -----------------------------------------------------------------------------
create function watchium_private.realtime_available()
returns boolean
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null;
end;
$$;
comment on function watchium_private.realtime_available() is
  'True when realtime.send(jsonb, text, text, boolean) exists (Supabase Realtime): room events are then broadcast; otherwise they are sent with NOTIFY.';
revoke all on function watchium_private.realtime_available() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.room_event_delivery(): the one place that decides how room
-- events are delivered right now: 'realtime', 'notify' or 'both'.
--
-- Reads the room_event_delivery setting: auto (the default) means Realtime
-- when realtime.send exists, else NOTIFY. 'both' without Realtime is 'notify'.
-- -----------------------------------------------------------------------------
create function watchium_private.room_event_delivery()
returns text
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_setting text := (
    select s.value #>> '{}' from watchium_private.settings as s where s.key = 'room_event_delivery'
  );
begin
  return case
    when coalesce(v_setting, 'auto') = 'notify' then 'notify'
    -- realtime_available(), inlined: one nested call less on every event.
    when pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null then 'notify'
    when v_setting = 'both' then 'both'
    else 'realtime'
  end;
end;
$$;
comment on function watchium_private.room_event_delivery() is
  'How room events are delivered now: realtime (realtime.send to room:<id>), notify (NOTIFY "watchium:room:<id>") or both. Decided from the room_event_delivery setting and whether realtime.send exists.';
revoke all on function watchium_private.room_event_delivery() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.commit_durably(): undo a heartbeat's soft commit.
--
-- A heartbeat that starts a transaction commits without waiting for the WAL
-- flush (see record_heartbeat in 0007): it sets synchronous_commit = off for
-- its transaction and remembers the value it replaced in the transaction-local
-- setting watchium.soft_commit. A room event is durable: whoever emits one in
-- such a transaction calls this, and the transaction commits as the session
-- would have committed it. Nothing to do (one setting read) otherwise.
-- -----------------------------------------------------------------------------
create function watchium_private.commit_durably()
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_replaced text := pg_catalog.current_setting('watchium.soft_commit', true);
begin
  if v_replaced in ('on', 'local', 'remote_write', 'remote_apply') then
    perform pg_catalog.set_config('synchronous_commit', v_replaced, true),
            pg_catalog.set_config('watchium.soft_commit', '', true);
  end if;
end;
$$;
comment on function watchium_private.commit_durably() is
  'Restores the synchronous_commit that a heartbeat relaxed for its transaction (remembered in watchium.soft_commit), so that a transaction writing a room event commits durably. Internal.';
revoke all on function watchium_private.commit_durably() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.room_event_topic(room_id, event): where an event goes.
--   room:<room_id>:members  play, pause, seek, chat_message: the custom
--                           events members send through broadcast_to_room
--                           (0006 accepts exactly these types);
--   room:<room_id>          every other event: written by the database.
-- Realtime authorizes a channel once, at join, whatever the event names
-- later sent on it, so the two must be different topics: members may send on
-- the first and only receive on the second (0006's policies), and an event
-- on room:<room_id> cannot be forged by a member. NOTIFY uses the channel
-- "watchium:" || topic.
-- -----------------------------------------------------------------------------
create function watchium_private.room_event_topic(p_room_id text, p_event text)
returns text
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
  return 'room:' || p_room_id
         || case when p_event in ('play', 'pause', 'seek', 'chat_message') then ':members' else '' end;
end;
$$;
comment on function watchium_private.room_event_topic(text, text) is
  'The topic of a room event: room:<room_id>:members for member broadcasts (play, pause, seek, chat_message), room:<room_id> for the database''s own events. NOTIFY channel: "watchium:" || topic. Internal.';
revoke all on function watchium_private.room_event_topic(text, text) from public;

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
set search_path = pg_catalog, pg_temp
as $$
declare
  v_event_id bigint;
  v_message  jsonb;
  v_text     text;
  v_delivery text := watchium_private.room_event_delivery();
  v_topic    text;
begin
  insert into watchium_private.room_events (room_id, event, payload)
  values (p_room_id, p_event, coalesce(p_payload, '{}'::jsonb))
  returning event_id into v_event_id;
  perform watchium_private.commit_durably();  -- an event is never soft state

  v_message := pg_catalog.jsonb_build_object(
    'event_id', v_event_id,
    'room_id', p_room_id,
    'event', p_event,
    'payload', coalesce(p_payload, '{}'::jsonb),
    'sent_at', pg_catalog.now()
  );

  v_topic := watchium_private.room_event_topic(p_room_id, p_event);
  if v_delivery in ('realtime', 'both') then
    -- Dynamic, and built by format(): realtime.send may not exist when this
    -- function is created or checked.
    execute pg_catalog.format('select %I.send($1, $2, $3, true)', 'realtime')
      using v_message, p_event, v_topic;
  end if;
  if v_delivery in ('notify', 'both') then
    v_text := v_message::text;
    if pg_catalog.octet_length(v_text) >= 8000 then
      v_text := pg_catalog.jsonb_build_object(
        'event_id', v_event_id, 'room_id', p_room_id, 'event', p_event, 'truncated', true
      )::text;
    end if;
    perform pg_catalog.pg_notify('watchium:' || v_topic, v_text);
  end if;

  return v_event_id;
end;
$$;
comment on function watchium_private.emit_room_event(text, text, jsonb) is
  'Logs a room event and delivers it to its topic (room_event_topic: room:<room_id>, or room:<room_id>:members for member broadcasts) through Supabase Realtime, or to NOTIFY channel "watchium:" || topic (plain PostgreSQL). Returns the event id. Internal: called by the RPC functions and triggers.';
revoke all on function watchium_private.emit_room_event(text, text, jsonb) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.read_room_events(room_id, after_xact_id, after_event_id, limit)
--
-- Reading for listeners (watchium_db.listener). In one snapshot, returns
--   {"snapshot_xmin": <xid8 as text>,
--    "events": [{event_id, room_id, event, payload, created_at, xact_id}, ...],
--    "more": <true when p_limit cut the list>,
--    "held": <true when committed events wait for an older transaction>,
--    "expired": null | {"xact_id", "event_id", "expired_at"}}
-- "events" are the room's events after the position (p_after_xact_id,
-- p_after_event_id) whose transaction is below the snapshot's xmin, in
-- (xact_id, event_id) order, at most p_limit. An event of a transaction at or
-- above the xmin is held back ("held") until every older transaction has
-- ended, so a later read never returns an event before one already returned.
-- "expired" is set when trimming deleted events after the position: they are
-- lost to this reader. With a null position it returns no events, and
-- snapshot_xmin is the position to start from: (snapshot_xmin, 0) reads the
-- events of transactions not ended when the reader started.
-- Security definer: the log is private; run by the app server's trusted role
-- (service_role or the owner), never by clients.
-- -----------------------------------------------------------------------------
create function watchium_private.read_room_events(
  p_room_id text,
  p_after_xact_id xid8,
  p_after_event_id bigint,
  p_limit integer default 1000
)
returns jsonb
language plpgsql
stable
security definer  -- reads the private event log for a trusted server-side listener
set search_path = pg_catalog, pg_temp
as $$
declare
  v_xmin    xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
  v_events  jsonb;
  v_count   integer;
  v_expired jsonb;
begin
  if p_limit is null or p_limit < 1 or p_limit > 10000 then
    raise exception 'p_limit must be between 1 and 10000 (got %)', pg_catalog.quote_nullable(p_limit)
      using errcode = '22023';
  end if;
  if p_after_xact_id is null or p_after_event_id is null then
    return pg_catalog.jsonb_build_object(
      'snapshot_xmin', v_xmin::text, 'events', '[]'::jsonb, 'more', false, 'held', false,
      'expired', null
    );
  end if;

  select pg_catalog.jsonb_build_object(
           'xact_id', x.xact_id::text, 'event_id', x.event_id, 'expired_at', x.expired_at
         )
    into v_expired
    from watchium_private.room_events_expired as x
   where x.room_id = p_room_id
     and (x.xact_id, x.event_id) > (p_after_xact_id, p_after_event_id);

  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'event_id', e.event_id, 'room_id', e.room_id, 'event', e.event,
             'payload', e.payload, 'created_at', e.created_at, 'xact_id', e.xact_id::text
           ) order by e.xact_id, e.event_id), '[]'::jsonb),
         pg_catalog.count(*)
    into v_events, v_count
    from (
      select * from watchium_private.room_events as r
       where r.room_id = p_room_id
         and r.xact_id < v_xmin
         and (r.xact_id, r.event_id) > (p_after_xact_id, p_after_event_id)
       order by r.xact_id, r.event_id
       limit p_limit + 1
    ) as e;

  if v_count > p_limit then
    v_events := v_events - p_limit;  -- drop the extra one read to know there is more
  end if;

  return pg_catalog.jsonb_build_object(
    'snapshot_xmin', v_xmin::text,
    'events', v_events,
    'more', v_count > p_limit,
    'held', exists (
      select from watchium_private.room_events as r
       where r.room_id = p_room_id and r.xact_id >= v_xmin
    ),
    'expired', v_expired
  );
end;
$$;
comment on function watchium_private.read_room_events(text, xid8, bigint, integer) is
  'Reading of a room''s event log for trusted server-side listeners: the events after position (p_after_xact_id, p_after_event_id) whose transaction is below this snapshot''s xmin, in (xact_id, event_id) order (at most p_limit), whether more are held for older transactions, and whether trimming deleted events after the position ("expired").';
revoke all on function watchium_private.read_room_events(text, xid8, bigint, integer) from public;
grant execute on function watchium_private.read_room_events(text, xid8, bigint, integer) to service_role;

-- -----------------------------------------------------------------------------
-- watchium_private.read_room_event(room_id, event_id): one logged event as
-- jsonb (null when absent or expired). The listener uses it to fetch the full
-- payload of a notification sent truncated.
-- Security definer: the log is private; trusted server-side callers only.
-- -----------------------------------------------------------------------------
create function watchium_private.read_room_event(p_room_id text, p_event_id bigint)
returns jsonb
language sql
stable
security definer  -- reads the private event log for a trusted server-side listener
set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.jsonb_build_object(
    'event_id', e.event_id, 'room_id', e.room_id, 'event', e.event,
    'payload', e.payload, 'created_at', e.created_at, 'xact_id', e.xact_id::text
  )
  from watchium_private.room_events as e
  where e.event_id = p_event_id and e.room_id = p_room_id
$$;
comment on function watchium_private.read_room_event(text, bigint) is
  'One event of the room''s log as jsonb, or null. For trusted server-side listeners (full payload of a truncated notification).';
revoke all on function watchium_private.read_room_event(text, bigint) from public;
grant execute on function watchium_private.read_room_event(text, bigint) to service_role;

-- -----------------------------------------------------------------------------
-- watchium_private.expire_room_events(): delete events older than the
-- room_event_retention setting and record, per room, the highest position
-- deleted (room_events_expired), so that listeners behind it learn that
-- events are gone; returns {"deleted": n, "retention": "..."}.
-- Called by maintenance (public.maintain()).
-- -----------------------------------------------------------------------------
create function watchium_private.expire_room_events()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_retention interval := coalesce(
    watchium_private.setting_interval('room_event_retention'), interval '1 hour'
  );
  v_deleted bigint;
begin
  with deleted as (
    delete from watchium_private.room_events as e
    where e.created_at < pg_catalog.now() - v_retention
    returning e.room_id, e.xact_id, e.event_id
  ), highest as (
    select distinct on (d.room_id) d.room_id, d.xact_id, d.event_id
      from deleted as d
     order by d.room_id, d.xact_id desc, d.event_id desc
  ), recorded as (
    insert into watchium_private.room_events_expired as x (room_id, xact_id, event_id)
    select h.room_id, h.xact_id, h.event_id from highest as h
    on conflict (room_id) do update
      set xact_id = excluded.xact_id, event_id = excluded.event_id,
          expired_at = pg_catalog.now()
      where (x.xact_id, x.event_id) < (excluded.xact_id, excluded.event_id)
    returning 1
  )
  select pg_catalog.count(*) into v_deleted from deleted;
  return pg_catalog.jsonb_build_object('deleted', v_deleted, 'retention', v_retention::text);
end;
$$;
comment on function watchium_private.expire_room_events() is
  'Deletes room events older than the room_event_retention setting (default 1 hour) and records per room the highest position deleted (room_events_expired); returns {"deleted": n, "retention": "..."}. Run by maintenance.';
revoke all on function watchium_private.expire_room_events() from public;

comment on column watchium_private.room_events.event_id is 'Identity; listeners resume after the last event id they saw.';
comment on column watchium_private.room_events.room_id is 'The room whose topic the event went to.';
comment on column watchium_private.room_events.event is 'Event name (member_joined, playback, sync_status, ...; see docs/realtime.md).';
comment on column watchium_private.room_events.payload is 'The event''s payload as delivered (never an access key).';
comment on column watchium_private.room_events.created_at is 'When the event was emitted (transaction time).';
