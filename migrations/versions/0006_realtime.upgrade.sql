-- =============================================================================
-- 0006 realtime
--
-- How room changes reach clients (docs/realtime.md has the whole story):
--   * Postgres Changes: rooms, room_members and comments are in publication
--     supabase_realtime (created when absent; other tables in it are left
--     alone; FOR ALL TABLES is refused). Deletes carry only a random
--     replica_key. sync_states is not published. Secrets and presence live
--     in watchium_private and are never published.
--   * Database broadcast: room events go through
--     watchium_private.emit_room_event (0004) to Supabase Realtime's private
--     topic room:<room_id>, or to NOTIFY "watchium:room:<room_id>" on plain
--     PostgreSQL. broadcast_to_room sends members' custom events to
--     room:<room_id>:members (NOTIFY "watchium:room:<room_id>:members").
--   * Realtime Authorization: RLS policies on realtime.messages so that only
--     a room's members receive on room:<room_id> (the database's events) and
--     receive and send on room:<room_id>:members (member broadcasts);
--     installed when the realtime schema exists, and by
--     watchium_private.install_realtime_authorization() when Realtime is
--     installed later.
--   * Health: public.realtime_health() (service_role) / `watchium-db doctor`.
-- =============================================================================

-- =============================================================================
-- Settings and rate limits
-- =============================================================================
insert into watchium_private.settings (key, value, description) values
  ('realtime_publication_state', '{"created_publication": false, "added_tables": []}',
   'Maintained by migration 0006: whether it created publication supabase_realtime and which tables it added, so the downgrade removes exactly those. Do not edit.'),
  ('replication_slot_max_lag_bytes', '1073741824',
   'realtime_health() reports a problem when a replication slot retains more WAL than this many bytes (default 1 GiB).'),
  ('broadcast_max_payload_bytes', '16384',
   'Largest p_payload (as JSON text, in bytes) broadcast_to_room accepts.');

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('broadcast', 120, 1, 'broadcast_to_room: custom events a user may send per minute (all rooms).');

-- =============================================================================
-- Publication supabase_realtime
--
-- Our three published tables: rooms, room_members, comments. Created when
-- absent (plainly: we publish no partitioned table, so no option of ours
-- changes how another app's tables are published). When the publication
-- already exists (Supabase) its options and other tables are left alone and
-- only our tables not yet in it are added; they are recorded in the
-- realtime_publication_state setting so that the downgrade removes exactly
-- them (and drops the publication only if this revision created it and
-- nothing else is in it).
--
-- A FOR ALL TABLES publication is refused (55000): it would publish
-- watchium_private's tables (access keys, presence, the event log).
--
-- public.sync_states is not published. Realtime needs a primary key on every
-- published relation (partitions included) to apply RLS, and history has
-- none (0002: a per-row cost on the heartbeat path with no reader); with
-- Supabase's publish_via_partition_root = false its rows would also be
-- published under the hourly partitions' names, which no subscription to
-- sync_states matches. Each insert would reach subscribers as an error
-- record. Clients follow sync through sync_status room events and read
-- history with get_room_sync_metrics (docs/realtime.md).
-- =============================================================================
do $publication$
declare
  v_pub     pg_catalog.pg_publication;
  v_created boolean := false;
  v_added   jsonb := '[]'::jsonb;
  v_table   text;
begin
  select * into v_pub from pg_catalog.pg_publication as p where p.pubname = 'supabase_realtime';
  if not found then
    create publication supabase_realtime;
    v_created := true;
    select * into v_pub from pg_catalog.pg_publication as p where p.pubname = 'supabase_realtime';
  end if;

  if v_pub.puballtables then
    raise exception 'publication supabase_realtime is FOR ALL TABLES: it would publish watchium-db''s private tables (access keys, presence, the event log)'
      using errcode = '55000',
            hint = 'Recreate it for the tables your app publishes (drop publication supabase_realtime; create publication supabase_realtime for table ...), then run the upgrade again: it adds public.rooms, public.room_members and public.comments.';
  end if;

  foreach v_table in array array['public.rooms', 'public.room_members', 'public.comments'] loop
    if not exists (
      select from pg_catalog.pg_publication_rel as pr
      where pr.prpubid = v_pub.oid and pr.prrelid = v_table::regclass
    ) then
      execute pg_catalog.format('alter publication supabase_realtime add table %s',
                                v_table::regclass);
      v_added := v_added || pg_catalog.to_jsonb(v_table);
    end if;
  end loop;

  update watchium_private.settings
  set value = pg_catalog.jsonb_build_object('created_publication', v_created, 'added_tables', v_added)
  where key = 'realtime_publication_state';
end
$publication$;

-- =============================================================================
-- Replica identity: the random replica_key of each published table (0002),
-- through its unique index. What a subscriber sees:
--   INSERT  the new row (RLS applies on Supabase).
--   UPDATE  the new row (unchanged TOASTed values excepted); no old values
--           (replica_key never changes). RLS applies.
--   DELETE  only replica_key, a random uuid. Realtime does not apply RLS to
--           DELETE events, so the old record goes to every subscriber of the
--           table: with the primary key as identity that was the room id of a
--           deleted private room and the room and user id of everyone who
--           left one. A random key tells an outsider nothing; a client that
--           holds the row (it could read it) matches the key to it.
-- FULL would log every old row on each update and publish it on delete.
-- realtime_health() checks these.
--
-- sync_states is not published (above). Its default partition and the hourly
-- partitions (0007) keep replica identity FULL, so that a delete still works
-- if an app adds the table to a publication of its own.
-- =============================================================================
alter table public.rooms replica identity using index rooms_replica_key_idx;
alter table public.room_members replica identity using index room_members_replica_key_idx;
alter table public.comments replica identity using index comments_replica_key_idx;
alter table public.sync_states_default replica identity full;

-- =============================================================================
-- Realtime Authorization (Supabase): policies on realtime.messages
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.install_realtime_authorization(): create (or re-create)
-- our two policies on realtime.messages; false when Realtime is absent.
--
-- Two topics per room (Realtime checks a channel's policies once, when a
-- client joins, not per message or event name, so the topics differ in who
-- may send):
--   room:<id>          the database's own events (emit_room_event): members
--                      receive only. Nobody but the database sends there, so
--                      a playback, host_changed or room_deleted event on it
--                      is real.
--   room:<id>:members  member-to-member broadcast and presence: members
--                      receive and send.
--   watchium_messages_select_authenticated  receive (SELECT): both topics
--   watchium_messages_insert_authenticated  send (INSERT): room:<id>:members
-- broadcast and presence only, for rooms the caller is a member of. Identity
-- and the topic are read once per statement (initplans around
-- realtime.topic() and watchium_private.my_room_ids()). Policies are
-- permissive: another app's policy on realtime.messages can still allow more
-- for its own topics. Idempotent; run it after installing Realtime into a
-- database that was migrated before (`watchium-db doctor` says when).
--
-- The policies and their comments are separate steps: a role that may create
-- policies on realtime.messages but not comment on them (postgres on Supabase
-- images whose supautils predates 3.3) gets the policies, without comments,
-- and a notice. Not security definer: the caller must be allowed to create
-- policies on realtime.messages (postgres on Supabase, the owner on plain
-- PostgreSQL).
-- -----------------------------------------------------------------------------
create function watchium_private.install_realtime_authorization()
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if pg_catalog.to_regclass('realtime.messages') is null
     or pg_catalog.to_regprocedure('realtime.topic()') is null then
    return false;
  end if;

  drop policy if exists watchium_messages_select_authenticated on realtime.messages;
  create policy watchium_messages_select_authenticated on realtime.messages
    for select to authenticated
    using (
      extension in ('broadcast', 'presence')
      and (select realtime.topic()) in (
        select t.topic
        from watchium_private.my_room_ids() as r(room_id)
        cross join lateral (values ('room:' || r.room_id), ('room:' || r.room_id || ':members')) as t(topic)
      )
    );

  drop policy if exists watchium_messages_insert_authenticated on realtime.messages;
  create policy watchium_messages_insert_authenticated on realtime.messages
    for insert to authenticated
    with check (
      extension in ('broadcast', 'presence')
      and (select realtime.topic()) in (
        select 'room:' || r.room_id || ':members' from watchium_private.my_room_ids() as r(room_id)
      )
    );

  begin
    comment on policy watchium_messages_select_authenticated on realtime.messages is
      'watchium-db: members of a room receive broadcast and presence on room:<room_id> (the database''s events) and room:<room_id>:members.';
    comment on policy watchium_messages_insert_authenticated on realtime.messages is
      'watchium-db: members of a room send broadcast and presence on room:<room_id>:members only; room:<room_id> is for the database''s events.';
  exception
    when insufficient_privilege then
      raise notice 'watchium-db: policies on realtime.messages installed without their comments: %', sqlerrm;
  end;

  return true;
end;
$$;
comment on function watchium_private.install_realtime_authorization() is
  'Creates (or re-creates) the watchium-db policies on realtime.messages: members of a room receive on room:<room_id> and room:<room_id>:members and send on room:<room_id>:members only. Returns false when the realtime schema is absent. Idempotent; run after installing Realtime later.';
revoke all on function watchium_private.install_realtime_authorization() from public;

-- Installed now when Realtime is already there. A migrating role that may not
-- create policies on realtime.messages does not fail the migration: the
-- warning below (prefix "watchium-db:") is printed by `watchium-db upgrade` /
-- `alembic upgrade` (migrations/env.py collects it), and realtime_health()
-- (`watchium-db doctor`) reports the missing policies and the fix until
-- someone allowed runs the installer.
do $authorization$
begin
  perform watchium_private.install_realtime_authorization();
exception
  when insufficient_privilege then
    raise warning 'watchium-db: Realtime Authorization is not installed: could not create policies on realtime.messages: %', sqlerrm
      using hint = 'Run select watchium_private.install_realtime_authorization(); as a role that may create policies on realtime.messages (postgres on Supabase, its owner elsewhere), then check with watchium-db doctor. Until then members are refused on their private channels.';
end
$authorization$;

-- =============================================================================
-- broadcast_to_room
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.validate_broadcast_payload(event_type, payload): the
-- payload of a custom event, checked field by field (22023 naming the field),
-- with only the event's own fields. The seed's validateEventPayload, made
-- strict:
--   play, pause, seek  {"current_time": number 0..86400}
--   chat_message       {"message": string, 1..2000 characters, not blank}
-- Any other event type is rejected. user_id and username are accepted and
-- ignored (the caller's identity replaces them); any other key is rejected.
-- JSON numbers cannot be NaN or Infinity, and strings are not numbers.
-- -----------------------------------------------------------------------------
create function watchium_private.validate_broadcast_payload(p_event_type text, p_payload jsonb)
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_fields  text[];
  v_unknown text;
  v_time    numeric;
  v_message text;
begin
  v_fields := case p_event_type
    when 'play' then array['current_time']
    when 'pause' then array['current_time']
    when 'seek' then array['current_time']
    when 'chat_message' then array['message']
  end;
  if v_fields is null then
    raise exception 'p_event_type must be one of play, pause, seek, chat_message (got %)',
      pg_catalog.quote_nullable(pg_catalog.left(p_event_type, 60))
      using errcode = '22023',
            hint = 'Room state events (member_joined, playback, ...) come from the database itself.';
  end if;
  if p_payload is null or pg_catalog.jsonb_typeof(p_payload) <> 'object' then
    raise exception 'p_payload must be a JSON object'
      using errcode = '22023';
  end if;

  select k into v_unknown
  from pg_catalog.jsonb_object_keys(p_payload) as k
  where k <> all (v_fields || array['user_id', 'username'])
  order by k
  limit 1;
  if v_unknown is not null then
    raise exception 'p_payload.% is not a field of % events (fields: %)',
      pg_catalog.left(v_unknown, 60), p_event_type, pg_catalog.array_to_string(v_fields, ', ')
      using errcode = '22023';
  end if;

  if p_event_type in ('play', 'pause', 'seek') then
    if pg_catalog.jsonb_typeof(p_payload -> 'current_time') is distinct from 'number' then
      raise exception 'p_payload.current_time must be a number of seconds'
        using errcode = '22023', hint = 'Send {"current_time": 12.5}.';
    end if;
    v_time := (p_payload ->> 'current_time')::numeric;
    if v_time < 0 or v_time > 86400 then
      raise exception 'p_payload.current_time must be between 0 and 86400 seconds (got %)', v_time
        using errcode = '22023';
    end if;
    return pg_catalog.jsonb_build_object('current_time', pg_catalog.round(v_time, 2));
  end if;

  -- chat_message
  if pg_catalog.jsonb_typeof(p_payload -> 'message') is distinct from 'string' then
    raise exception 'p_payload.message must be a string'
      using errcode = '22023', hint = 'Send {"message": "hello"}.';
  end if;
  -- The text rule of post_comment: trimmed, 1 to 2000 characters, not blank,
  -- no control characters but line feeds, no bidirectional controls.
  v_message := watchium_private.check_text('p_payload.message', p_payload ->> 'message', 1, 2000, true);
  return pg_catalog.jsonb_build_object('message', v_message);
end;
$$;
comment on function watchium_private.validate_broadcast_payload(text, jsonb) is
  'Validates a broadcast_to_room payload for its event type (play/pause/seek: current_time 0..86400; chat_message: message 1..2000 characters) and returns its fields; raises 22023 naming the field. Internal.';
revoke all on function watchium_private.validate_broadcast_payload(text, jsonb) from public;

-- -----------------------------------------------------------------------------
-- public.broadcast_to_room(p_room_id, p_event_type, p_payload) -> event_id
--
-- Sends a custom event to the room's member topic (room:<room_id>:members on
-- Supabase, NOTIFY "watchium:room:<room_id>:members" elsewhere) through
-- emit_room_event (room_event_topic routes these types there), never to
-- room:<room_id>, the database's own topic. Only
-- members may send; play/pause/seek only the host (the single authority over
-- playback). The delivered payload is the validated fields plus the sender
-- from the token: {..., "user_id": <caller>, "username": <member name>}.
-- Rate limited by the 'broadcast' rule. Takes no room lock: it changes no
-- room state.
-- Security definer: reads room_members and writes the private event log.
-- -----------------------------------------------------------------------------
create function watchium_rpc.broadcast_to_room(p_room_id text, p_event_type text, p_payload jsonb)
returns bigint
language plpgsql
volatile
security definer  -- reads membership and writes watchium_private.room_events for the caller
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_max      bigint;
  v_fields   jsonb;
  v_is_host  boolean;
  v_username text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_event_type', pg_catalog.octet_length(p_event_type), 200);
  perform watchium_private.check_size('p_payload', pg_catalog.pg_column_size(p_payload), 1048576);
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]'
      using errcode = '22023';
  end if;
  v_max := coalesce(
    (select (s.value #>> '{}')::bigint from watchium_private.settings as s
     where s.key = 'broadcast_max_payload_bytes'),
    16384
  );
  if p_payload is not null and pg_catalog.octet_length(p_payload::text) > v_max then
    raise exception 'p_payload must be at most % bytes as JSON (got %)',
      v_max, pg_catalog.octet_length(p_payload::text)
      using errcode = '22023';
  end if;
  v_fields := watchium_private.validate_broadcast_payload(p_event_type, p_payload);

  select m.is_host, m.username into v_is_host, v_username
  from public.room_members as m
  where m.room_id = p_room_id and m.user_id = v_user_id;
  if not found then
    raise exception 'not a member of room %: only members may broadcast to it', p_room_id
      using errcode = '42501',
            hint = 'Join the room first.';
  end if;
  if p_event_type in ('play', 'pause', 'seek') and not v_is_host then
    raise exception '% events may only be sent by the host of room %', p_event_type, p_room_id
      using errcode = '42501';
  end if;

  perform watchium_private.enforce_rate_limit(v_user_id, 'broadcast');

  return watchium_private.emit_room_event(
    p_room_id,
    p_event_type,
    v_fields || pg_catalog.jsonb_build_object('user_id', v_user_id, 'username', v_username)
  );
end;
$$;
comment on function watchium_rpc.broadcast_to_room(text, text, jsonb) is
  'Body of public.broadcast_to_room (same arguments, result and errors; documented there). Security definer: reads membership and writes watchium_private.room_events for the caller. Callers reach it through public.broadcast_to_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.broadcast_to_room(text, text, jsonb) from public;
grant execute on function watchium_rpc.broadcast_to_room(text, text, jsonb)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.broadcast_to_room: the Data API entry point; its body is
-- watchium_rpc.broadcast_to_room above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.broadcast_to_room(p_room_id text, p_event_type text, p_payload jsonb)
returns bigint
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.broadcast_to_room(p_room_id, p_event_type, p_payload);
end;
$$;
comment on function public.broadcast_to_room(text, text, jsonb) is
  'Sends a custom event (play, pause, seek: host only; chat_message) to the room''s member topic room:<room_id>:members. Members only; payload validated per event type; sender identity from the token; rate limited (rule broadcast). Returns the event id.';
revoke all on function public.broadcast_to_room(text, text, jsonb) from public, anon;
grant execute on function public.broadcast_to_room(text, text, jsonb) to authenticated, service_role;

-- =============================================================================
-- Health
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.realtime_health(): the realtime health report as jsonb.
--
--   ok, problems[], warnings[], checked_at
--   publication    exists, all_tables, publish_via_partition_root, and per
--                  table: published, replica_identity (expected: index
--                  <table>_replica_key_idx); sync_states must not be in it
--   realtime       schema_present, send_available, delivery (realtime|notify|both)
--   authorization  required (realtime.messages exists), policies present
--   replication_slots  name, plugin, active, lag_bytes (WAL retained)
--   events         logged, last_minute, notify_queue_usage (0..1), oldest, retention
--   members        stale (no heartbeat for member_stale_after), stale_after
--   rooms          empty (no members: awaiting clean-up)
-- Problems make ok false (doctor exits non-zero); warnings do not.
-- -----------------------------------------------------------------------------
create function watchium_private.realtime_health()
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_problems      text[] := '{}'::text[];
  v_warnings      text[] := '{}'::text[];
  v_pub           pg_catalog.pg_publication;
  v_tables        jsonb := '{}'::jsonb;
  v_table         text;
  v_published     boolean;
  v_identity      text;
  v_expected      text;
  v_realtime      boolean := pg_catalog.to_regnamespace('realtime') is not null;
  v_messages      boolean := pg_catalog.to_regclass('realtime.messages') is not null;
  v_policies      jsonb := '{}'::jsonb;
  v_policy        text;
  v_present       boolean;
  v_slots         jsonb;
  v_max_lag       numeric := coalesce(
    (select (s.value #>> '{}')::numeric from watchium_private.settings as s
     where s.key = 'replication_slot_max_lag_bytes'),
    1073741824
  );
  v_stale_after   interval := coalesce(
    watchium_private.setting_interval('member_stale_after'), interval '2 minutes'
  );
  v_delivery_set  text := (select s.value #>> '{}' from watchium_private.settings as s
                           where s.key = 'room_event_delivery');
begin
  -- publication -----------------------------------------------------------------
  select * into v_pub from pg_catalog.pg_publication as p where p.pubname = 'supabase_realtime';
  if not found then
    v_problems := v_problems || 'publication supabase_realtime does not exist'::text;
  end if;
  foreach v_table in array array['public.rooms', 'public.room_members', 'public.comments'] loop
    v_published := v_pub.oid is not null and (
      v_pub.puballtables or exists (
        select from pg_catalog.pg_publication_rel as pr
        where pr.prpubid = v_pub.oid and pr.prrelid = pg_catalog.to_regclass(v_table)
      )
    );
    v_expected := pg_catalog.replace(v_table, 'public.', '') || '_replica_key_idx';
    select case c.relreplident when 'd' then 'default' when 'f' then 'full' when 'n' then 'nothing'
                               when 'i' then coalesce((
                                 select 'index ' || ic.relname
                                 from pg_catalog.pg_index as i
                                 join pg_catalog.pg_class as ic on ic.oid = i.indexrelid
                                 where i.indrelid = c.oid and i.indisreplident), 'index')
           end
      into v_identity
    from pg_catalog.pg_class as c where c.oid = pg_catalog.to_regclass(v_table);
    if v_pub.oid is not null and not v_published then
      v_problems := v_problems
        || pg_catalog.format('table %s is not in publication supabase_realtime', v_table);
    end if;
    if v_identity is distinct from 'index ' || v_expected then
      v_problems := v_problems
        || pg_catalog.format('table %s has replica identity %s, expected index %s (run alter table %s replica identity using index %s)',
                             v_table, coalesce(v_identity, '(missing table)'), v_expected,
                             v_table, v_expected);
    end if;
    v_tables := v_tables || pg_catalog.jsonb_build_object(v_table, pg_catalog.jsonb_build_object(
      'published', v_published, 'replica_identity', v_identity,
      'expected_replica_identity', 'index ' || v_expected
    ));
  end loop;
  -- sync_states must not be published, as itself or as a partition: Realtime
  -- cannot apply RLS to a relation without a primary key and sends every
  -- subscriber an error record per insert.
  if v_pub.oid is not null and (v_pub.puballtables or exists (
    select from pg_catalog.pg_publication_rel as pr
    where pr.prpubid = v_pub.oid
      and (pr.prrelid = 'public.sync_states'::regclass
           or pr.prrelid in (select i.inhrelid from pg_catalog.pg_inherits as i
                             where i.inhparent = 'public.sync_states'::regclass))
  )) then
    v_problems := v_problems || ('public.sync_states is in publication supabase_realtime: it has no'
      ' primary key, so Realtime cannot deliver it (run alter publication supabase_realtime drop table public.sync_states)')::text;
  end if;
  -- Private tables must never be published.
  if v_pub.oid is not null and (v_pub.puballtables or exists (
    select from pg_catalog.pg_publication_rel as pr
    join pg_catalog.pg_class as c on c.oid = pr.prrelid
    where pr.prpubid = v_pub.oid and c.relnamespace = 'watchium_private'::regnamespace
  )) then
    v_problems := v_problems
      || 'publication supabase_realtime publishes tables of watchium_private (secrets, presence)'::text;
  end if;

  -- realtime and its authorization ---------------------------------------------
  if v_messages then
    foreach v_policy in array array['watchium_messages_select_authenticated',
                                    'watchium_messages_insert_authenticated'] loop
      v_present := exists (
        select from pg_catalog.pg_policy as pol
        where pol.polrelid = pg_catalog.to_regclass('realtime.messages') and pol.polname = v_policy
      );
      v_policies := v_policies || pg_catalog.jsonb_build_object(v_policy, v_present);
      if not v_present then
        v_problems := v_problems || pg_catalog.format(
          'policy %s on realtime.messages is missing: run select watchium_private.install_realtime_authorization(); as postgres (Supabase) or the owner of realtime.messages',
          v_policy);
      end if;
    end loop;
  end if;
  if v_delivery_set is distinct from null and v_delivery_set not in ('auto', 'notify', 'both') then
    v_problems := v_problems || pg_catalog.format(
      'setting room_event_delivery is %s, expected auto, notify or both', v_delivery_set);
  end if;

  -- NOTIFY queue: a listener that stops reading fills it, and when it is full
  -- every NOTIFY (so every transaction emitting a room event) fails at commit.
  if pg_catalog.pg_notification_queue_usage() > 0.5 then
    v_problems := v_problems || pg_catalog.format(
      'the NOTIFY queue is %s%% full: a listening session is not consuming notifications',
      pg_catalog.round((pg_catalog.pg_notification_queue_usage() * 100)::numeric, 1));
  end if;

  -- replication slots ------------------------------------------------------------
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
      'slot_name', s.slot_name, 'plugin', s.plugin, 'slot_type', s.slot_type,
      'active', s.active,
      'lag_bytes', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)
    ) order by s.slot_name), '[]'::jsonb)
    into v_slots
  from pg_catalog.pg_replication_slots as s
  where s.database is null or s.database = pg_catalog.current_database();
  select v_problems || coalesce(pg_catalog.array_agg(pg_catalog.format(
      'replication slot %s retains %s bytes of WAL (more than %s)',
      x ->> 'slot_name', x ->> 'lag_bytes', v_max_lag)), '{}')
    into v_problems
  from pg_catalog.jsonb_array_elements(v_slots) as x
  where (x ->> 'lag_bytes')::numeric > v_max_lag;

  return pg_catalog.jsonb_build_object(
    'ok', pg_catalog.cardinality(v_problems) = 0,
    'problems', pg_catalog.to_jsonb(v_problems),
    'warnings', pg_catalog.to_jsonb(v_warnings),
    'checked_at', pg_catalog.now(),
    'publication', pg_catalog.jsonb_build_object(
      'name', 'supabase_realtime',
      'exists', v_pub.oid is not null,
      'all_tables', v_pub.puballtables,
      'publish_via_partition_root', v_pub.pubviaroot,
      'tables', v_tables
    ),
    'realtime', pg_catalog.jsonb_build_object(
      'schema_present', v_realtime,
      'send_available', watchium_private.realtime_available(),
      'delivery_setting', coalesce(v_delivery_set, 'auto'),
      'delivery', watchium_private.room_event_delivery(),
      'notify_channel', 'watchium:room:<room_id>',
      'topic', 'room:<room_id>',
      'members_notify_channel', 'watchium:room:<room_id>:members',
      'members_topic', 'room:<room_id>:members'
    ),
    'authorization', pg_catalog.jsonb_build_object(
      'required', v_messages,
      'policies', v_policies
    ),
    'replication_slots', v_slots,
    'events', (
      select pg_catalog.jsonb_build_object(
        'logged', pg_catalog.count(*),
        'last_minute', pg_catalog.count(*) filter (
          where e.created_at > pg_catalog.now() - interval '1 minute'
        ),
        'notify_queue_usage', pg_catalog.pg_notification_queue_usage(),
        'oldest', pg_catalog.min(e.created_at),
        'retention', watchium_private.setting_interval('room_event_retention')::text
      )
      from watchium_private.room_events as e
    ),
    'members', (
      select pg_catalog.jsonb_build_object(
        'total', pg_catalog.count(*),
        'stale', pg_catalog.count(*) filter (
          where p.last_heartbeat < pg_catalog.now() - v_stale_after
        ),
        'stale_after', v_stale_after::text
      )
      from watchium_private.member_presence as p
    ),
    'rooms', (
      select pg_catalog.jsonb_build_object(
        'total', pg_catalog.count(*),
        'empty', pg_catalog.count(*) filter (
          where not exists (select from public.room_members as m where m.room_id = r.room_id)
        )
      )
      from public.rooms as r
    )
  );
end;
$$;
comment on function watchium_private.realtime_health() is
  'Realtime health report (jsonb): publication and replica identities, realtime schema and delivery path, authorization policies, replication slot lag, event log, stale members, empty rooms; ok is false when problems is not empty. Read by watchium-db doctor.';
revoke all on function watchium_private.realtime_health() from public;

-- -----------------------------------------------------------------------------
-- public.realtime_health(): the report for operators over the Data API.
-- service_role only: the report names internals (slots, counts) that anon
-- and authenticated callers have no business seeing.
-- Security definer: reads watchium_private tables and catalogs for the caller.
-- -----------------------------------------------------------------------------
create function watchium_rpc.realtime_health()
returns jsonb
language sql
stable
security definer  -- reads the private presence table and event log for service_role
set search_path = pg_catalog, pg_temp
as $$
  select watchium_private.realtime_health()
$$;
comment on function watchium_rpc.realtime_health() is
  'Body of public.realtime_health (same arguments, result and errors; documented there). Security definer: reads the private presence table and event log for service_role. Callers reach it through public.realtime_health, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.realtime_health() from public;
grant execute on function watchium_rpc.realtime_health() to service_role;

-- -----------------------------------------------------------------------------
-- public.realtime_health: the Data API entry point; its body is
-- watchium_rpc.realtime_health above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.realtime_health()
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
as $$
begin
  return watchium_rpc.realtime_health();
end;
$$;
comment on function public.realtime_health() is
  'Realtime health report (see watchium_private.realtime_health). service_role only.';
revoke all on function public.realtime_health() from public, anon, authenticated;
grant execute on function public.realtime_health() to service_role;
