-- =============================================================================
-- 0007 playback sync
--
-- The hot path of the platform:
--   host controls       change_playback_state, seek_to_time, set_playback_speed
--                       (host only; room row lock first; one sync record per
--                       member through bulk_sync_update, stored as one
--                       snapshot row; one 'playback' event)
--   heartbeats          record_heartbeat (one member), record_heartbeats (an
--                       edge server relaying many members of one room)
--   the "Live" button   get_room_sync_state
--   history             sync_states, hourly partitions kept by
--                       watchium_private.maintain_sync_history()
--   metrics             get_room_sync_metrics, record_realtime_metrics,
--                       get_realtime_metrics_summary
--
-- The host's position is extrapolated: the room stores the position at a
-- reference instant (playback_updated_at); while playing, the expected
-- position now is position + elapsed * speed. Every sync computation compares
-- members with that expected position, never with the stored number.
--
-- "Needs to resync" is derived, not written (watchium_private.needs_resync):
-- last heartbeat before the playback reference, or last drift > 2 s. A host
-- control writes the room row, one snapshot row of history (every member's
-- position) and one event; no presence or room_members row.
--
-- Heartbeats write only watchium_private.member_presence (unpublished, HOT).
-- The published room_members snapshot changes only when a member's is_synced
-- flips; heartbeat history is sampled (a row when the sync level changes,
-- else at most one per member per heartbeat_sample_interval).
-- =============================================================================

-- =============================================================================
-- Settings and rate limit rules
-- =============================================================================
insert into watchium_private.settings (key, value, description) values
  ('heartbeat_sample_interval', '"60 seconds"',
   'A heartbeat whose sync level did not change is written to public.sync_states at most once per member per this interval.'),
  ('heartbeat_min_interval', '"1 second"',
   'Heartbeats of one member arriving faster than this are rejected (record_heartbeat: WD429; record_heartbeats: skipped as throttled). The rate limit of both heartbeat forms: checked against member_presence.last_heartbeat, so it costs no write.'),
  ('sync_history_retention', '"6 hours"',
   'How long public.sync_states keeps history; maintenance drops hourly partitions entirely older than this.'),
  ('sync_history_premake', '"1 day"',
   'How far ahead maintenance creates hourly partitions of public.sync_states: long enough that runs skipped on a lock timeout are harmless.'),
  ('sync_history_drain_batch', '10000',
   'At most this many rows leave the default partition of public.sync_states per maintenance run (moved to their hour, or deleted when expired).'),
  ('maintenance_lock_timeout', '"50 milliseconds"',
   'How long maintenance waits for a lock before it skips the step (retried by the next run): bounds how long callers queue behind it.'),
  ('realtime_metrics_retention', '"24 hours"',
   'How long client-side realtime metrics stay in watchium_private.realtime_metrics.');

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('sync_control', 120, 1,
   'Host controls (play, pause, seek, speed) and direct bulk_sync_update calls, per host.'),
  ('realtime_metrics', 12, 1,
   'record_realtime_metrics calls per user; the seed''s dashboard reports every 30 s.');

-- =============================================================================
-- Helpers (internal)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.sync_level(drift): the seed's tolerances.
-- perfect <= 0.5 s, good <= 1 s, minor_drift <= 2 s (still synced),
-- out_of_sync > 2 s. The heartbeat hot paths (record_heartbeat, apply_heartbeats) inline
-- the same CASE: a function with SET search_path is never inlined, and
-- a call per row would cost more than the rest of the row.
-- -----------------------------------------------------------------------------
create function watchium_private.sync_level(p_time_difference numeric)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case
    when p_time_difference <= 0.5 then 'perfect'
    when p_time_difference <= 1 then 'good'
    when p_time_difference <= 2 then 'minor_drift'
    else 'out_of_sync'
  end
$$;
comment on function watchium_private.sync_level(numeric) is
  'Sync level of an absolute drift in seconds: perfect (<= 0.5), good (<= 1), minor_drift (<= 2), out_of_sync (> 2). A member is synced while <= 2. Internal.';
revoke all on function watchium_private.sync_level(numeric) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.require_playback_time(value, argument): validates a video
-- time from a client before anything touches a table. 'NaN' passes `>= 0` in
-- PostgreSQL, so NaN and the infinities are named and rejected first.
-- -----------------------------------------------------------------------------
create function watchium_private.require_playback_time(p_value numeric, p_argument text)
returns numeric
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_value is null then
    raise exception '% must be a number of seconds, not null', p_argument
      using errcode = '22023', hint = 'Pass the video position in seconds, 0 to 86400.';
  end if;
  if p_value = 'NaN'::numeric or p_value in ('Infinity'::numeric, '-Infinity'::numeric) then
    raise exception '% must be a finite number (got %)', p_argument, p_value
      using errcode = '22023', hint = 'Pass the video position in seconds, 0 to 86400.';
  end if;
  if p_value < 0 then
    raise exception '% must be >= 0 (got %)', p_argument, p_value
      using errcode = '22023', hint = 'Pass the video position in seconds, 0 to 86400.';
  end if;
  if p_value > 86400 then
    raise exception '% must be <= 86400 seconds (got %)', p_argument, p_value
      using errcode = '22023', hint = 'Video times are at most 24 hours.';
  end if;
  return pg_catalog.round(p_value, 2);
end;
$$;
comment on function watchium_private.require_playback_time(numeric, text) is
  'Returns p_value rounded to 2 decimals, or raises 22023 naming p_argument when it is null, NaN, infinite, negative or above 86400. Internal.';
revoke all on function watchium_private.require_playback_time(numeric, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.require_sync_room(room_id, user_id): the room row (no
-- lock) when user_id is a member; P0002 when the room does not exist or is
-- private and the caller is not a member (hide_private_room), 42501 for a
-- non-member of a public room. Trusted callers pass p_user_id null: room only.
-- -----------------------------------------------------------------------------
create function watchium_private.require_sync_room(p_room_id text, p_user_id text)
returns public.rooms
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room public.rooms;
begin
  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  -- Missing, or private and not a member: the same P0002.
  perform watchium_private.hide_private_room(v_room, p_room_id, p_user_id);
  if p_user_id is not null and not exists (
    select from public.room_members as m where m.room_id = p_room_id and m.user_id = p_user_id
  ) then
    raise exception 'p_room_id: you are not a member of room %', p_room_id
      using errcode = '42501', hint = 'Join the room first.';
  end if;
  return v_room;
end;
$$;
comment on function watchium_private.require_sync_room(text, text) is
  'The room p_room_id (unlocked); raises P0002 when absent or private to a non-member, 42501 when p_user_id (unless null) is not a member of the public room. Internal.';
revoke all on function watchium_private.require_sync_room(text, text) from public;

-- =============================================================================
-- bulk_sync_update: one sync record per member, one statement, one row.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.needs_resync(last_heartbeat, time_difference,
-- playback_updated_at, is_host): "needs to resync" is derived, never stored.
-- A member needs to resync when its last heartbeat predates the room's
-- playback reference (a control happened since: its position is unknown
-- until it reports again), or when the drift of its last heartbeat was > 2 s.
-- The host set the reference: a control alone never makes it need a resync.
-- No presence row (last_heartbeat null) counts as predating the reference,
-- and a member that joined but never reported (time_difference null) needs a
-- resync too: its position is unknown, so the Live button never counts it
-- as synced. The host is the exception in both cases.
-- Host controls therefore write nothing per member but history: the control's
-- 'playback' room event tells every client to resync at once, and the
-- published room_members.is_synced follows on each member's next heartbeat.
-- -----------------------------------------------------------------------------
create function watchium_private.needs_resync(
  p_last_heartbeat timestamptz,
  p_time_difference numeric,
  p_playback_updated_at timestamptz,
  p_is_host boolean
)
returns boolean
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select case
    when coalesce(p_last_heartbeat, '-infinity'::timestamptz) < p_playback_updated_at
      then not coalesce(p_is_host, false)
    when p_time_difference is null
      then not coalesce(p_is_host, false)
    else p_time_difference > 2
  end
$$;
comment on function watchium_private.needs_resync(timestamptz, numeric, timestamptz, boolean) is
  'True when a member must resync: its last heartbeat predates the room''s playback_updated_at or it never reported (unless it is the host), or its last drift was > 2 s. The one definition of the derived rule. Internal.';
revoke all on function watchium_private.needs_resync(timestamptz, numeric, timestamptz, boolean) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.sync_room_members(room_id, host_time, event, host, speed)
--
-- The set-based core of bulk_sync_update and the host controls: one
-- statement writing one sync record per member as a single snapshot row of
-- public.sync_states (member_ids / member_times against host_time; read one
-- record per member through public.sync_records). A member's position is
-- estimated from its presence (reported position + elapsed since its last
-- heartbeat * p_member_speed while it was playing); the host is at
-- p_host_time. One row and one index entry whatever the room's size: in a
-- room of 1,000 members, 1,000 rows and index entries were most of a
-- control's cost.
-- It writes nothing else: presence rows are read without a lock and left
-- alone ("needs to resync" is derived, see needs_resync).
-- Caller holds the room row lock. Returns {members, synced_members,
-- out_of_sync_members}, counted against p_host_time from the estimates.
-- -----------------------------------------------------------------------------
create function watchium_private.sync_room_members(
  p_room_id text,
  p_host_time numeric,
  p_sync_event_type text,
  p_host_user_id text,
  p_member_speed numeric
)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
-- PL/pgSQL only to keep the plan of its one statement cached across calls
-- (a SQL function is planned again on every call). plan_cache_mode: PL/pgSQL
-- kept choosing a custom plan, planned again on every call (about 0.1 ms, a
-- third of a control in a small room).
declare
  v_result jsonb;
begin
  -- The room's presence rows are its members: each member has exactly one,
  -- created with the membership (trigger _100_create_presence) and removed
  -- with it (foreign key, on delete cascade). No join to room_members.
  with estimate as (
    select p.user_id,
           case
             when p.user_id = p_host_user_id then p_host_time
             when not p.is_playing then p.reported_time
             else pg_catalog.round(least(
               86400::numeric,
               p.reported_time
                 + extract(epoch from greatest(pg_catalog.now() - p.last_heartbeat, interval '0'))
                   * p_member_speed
             ), 2)
           end as member_time
    from watchium_private.member_presence as p
    where p.room_id = p_room_id
  ),
  -- Element i of member_ids goes with element i of member_times; the order of
  -- the members is unspecified (sorting them cost more than the rest of the
  -- snapshot's assembly, for no reader).
  snapshot as (
    select pg_catalog.array_agg(e.user_id) as member_ids,
           pg_catalog.array_agg(e.member_time) as member_times,
           pg_catalog.count(*) as members,
           -- p_host_time and member times have 2 decimals: no rounding needed.
           pg_catalog.count(*) filter (where abs(p_host_time - e.member_time) <= 2) as synced
    from estimate as e
  ),
  history as (
    insert into public.sync_states (room_id, host_time, sync_event_type, member_ids, member_times)
    select p_room_id, p_host_time, p_sync_event_type, s.member_ids, s.member_times
    from snapshot as s
    where s.members > 0
  )
  select pg_catalog.jsonb_build_object(
    'members', s.members,
    'synced_members', s.synced,
    'out_of_sync_members', s.members - s.synced
  )
  into v_result
  from snapshot as s;
  return v_result;
end;
$$;
comment on function watchium_private.sync_room_members(text, numeric, text, text, numeric) is
  'Set-based core of bulk_sync_update: one statement writing one sync record per member of p_room_id against p_host_time, as one snapshot row of sync_states; reads presence unlocked and writes nothing else. Caller holds the room lock. Internal.';
revoke all on function watchium_private.sync_room_members(text, numeric, text, text, numeric) from public;

-- -----------------------------------------------------------------------------
-- public.bulk_sync_update(p_room_id, p_host_time, p_sync_event_type)
--
-- The seed's function and signature, set-based. Callable by the room's host
-- (identity from the token; counted against sync_control) and by trusted
-- callers (service_role, the owner). Nobody else may write history.
-- p_host_time null means the room's expected position now.
-- Security definer: writes sync_states and reads presence, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.bulk_sync_update(
  p_room_id text,
  p_host_time numeric,
  p_sync_event_type text
)
returns void
language plpgsql
volatile
security definer  -- writes public.sync_states, reads watchium_private.member_presence
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_time    numeric;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_sync_event_type', pg_catalog.octet_length(p_sync_event_type), 200);
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
  end if;
  if p_host_time is not null then
    v_time := watchium_private.require_playback_time(p_host_time, 'p_host_time');
  end if;
  if p_sync_event_type is null
     or p_sync_event_type not in ('heartbeat', 'seek', 'play_pause', 'speed', 'episode', 'join', 'leave') then
    raise exception 'p_sync_event_type must be one of heartbeat, seek, play_pause, speed, episode, join, leave (got %)',
      pg_catalog.quote_nullable(p_sync_event_type)
      using errcode = '22023';
  end if;
  if v_user_id is not null then
    perform watchium_private.enforce_rate_limit(v_user_id, 'sync_control');
  end if;

  -- Lock order: the room row first.
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  if v_user_id is not null and v_room.host_user_id is distinct from v_user_id then
    raise exception 'only the host of room % may write its sync history', p_room_id
      using errcode = '42501';
  end if;

  perform watchium_private.sync_room_members(
    p_room_id,
    coalesce(v_time, watchium_private.room_expected_position(v_room)),
    p_sync_event_type,
    v_room.host_user_id,
    v_room.playback_speed
  );
end;
$$;
comment on function watchium_rpc.bulk_sync_update(text, numeric, text) is
  'Body of public.bulk_sync_update (same arguments, result and errors; documented there). Security definer: writes public.sync_states, reads watchium_private.member_presence. Callers reach it through public.bulk_sync_update, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.bulk_sync_update(text, numeric, text) from public;
grant execute on function watchium_rpc.bulk_sync_update(text, numeric, text)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.bulk_sync_update: the Data API entry point; its body is
-- watchium_rpc.bulk_sync_update above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.bulk_sync_update(
  p_room_id text,
  p_host_time numeric,
  p_sync_event_type text
)
returns void
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  perform watchium_rpc.bulk_sync_update(p_room_id, p_host_time, p_sync_event_type);
end;
$$;
comment on function public.bulk_sync_update(text, numeric, text) is
  'Writes one sync record per member of p_room_id against p_host_time (null: the expected host position) in one statement, as one snapshot row of sync_states (read per member through sync_records); nothing else per member. Host (rate limited as sync_control) or service_role only.';
revoke all on function public.bulk_sync_update(text, numeric, text) from public, anon;
grant execute on function public.bulk_sync_update(text, numeric, text) to authenticated, service_role;

-- =============================================================================
-- Host controls
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.apply_host_control(user_id, room_id, action, is_playing, time, speed)
--
-- The shared body of the host controls. The caller validated its arguments
-- and passes the caller's id (require_user_id, read once per control).
--   1. rate limit (sync_control) for the caller;
--   2. the room row lock (lock order), then the host check;
--   3. the new state: a new reference instant (playback_updated_at = now) at
--      p_time, or at the expected position when p_time is null;
--   4. one sync record per member, one snapshot row (nothing else per member: "needs to
--      resync" is derived from the new reference, see needs_resync);
--   5. one 'playback' room event.
-- Returns the new state.
-- -----------------------------------------------------------------------------
create function watchium_private.apply_host_control(
  p_user_id text,
  p_room_id text,
  p_action text,
  p_is_playing boolean,
  p_time numeric,
  p_speed numeric
)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := p_user_id;
  v_room     public.rooms;
  v_old_speed numeric;
  v_position numeric;
  v_at       timestamptz;
  v_sync     jsonb;
  v_state    jsonb;
begin
  perform watchium_private.enforce_rate_limit(v_user_id, 'sync_control');

  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  -- rooms.host_user_id names the member flagged is_host (trigger
  -- _200_sync_room_host keeps them together, under this same row lock).
  if v_room.host_user_id is distinct from v_user_id then
    raise exception 'only the host of room % controls playback', p_room_id
      using errcode = '42501', hint = 'Ask the host, or become host when the host leaves.';
  end if;

  -- The new reference instant is when the change happens, after the room lock
  -- was granted, not when the transaction began: a control that waited behind
  -- another one must not date its position back (playing clients would
  -- overshoot by the wait times the speed).
  v_at := pg_catalog.clock_timestamp();
  v_position := coalesce(p_time, watchium_private.room_expected_position(v_room, v_at));
  v_old_speed := v_room.playback_speed;  -- members were playing at the old speed

  update public.rooms as r
  set is_playing = coalesce(p_is_playing, r.is_playing),
      current_playback_time = v_position,
      playback_speed = coalesce(p_speed, r.playback_speed),
      playback_updated_at = v_at,
      last_activity = pg_catalog.now()
  where r.room_id = p_room_id
  returning * into v_room;

  v_sync := watchium_private.sync_room_members(
    p_room_id,
    v_position,
    case p_action when 'seek' then 'seek' when 'speed' then 'speed' else 'play_pause' end,
    v_user_id,
    v_old_speed
  );

  v_state := pg_catalog.jsonb_build_object(
    'room_id', v_room.room_id,
    'action', p_action,
    'is_playing', v_room.is_playing,
    'current_time', v_room.current_playback_time,
    'playback_speed', v_room.playback_speed,
    'playback_updated_at', v_room.playback_updated_at,
    'episode_number', v_room.episode_number,
    'host_user_id', v_room.host_user_id
  );
  perform watchium_private.emit_room_event(p_room_id, 'playback', v_state);
  return v_state || pg_catalog.jsonb_build_object('sync', v_sync);
end;
$$;
comment on function watchium_private.apply_host_control(text, text, text, boolean, numeric, numeric) is
  'Shared body of the host controls: rate limit, room lock, host check, new playback reference, bulk sync, one playback event. Internal.';
revoke all on function watchium_private.apply_host_control(text, text, text, boolean, numeric, numeric) from public;

-- -----------------------------------------------------------------------------
-- public.change_playback_state(room_id, is_playing, current_time default null)
-- Play or pause. current_time null keeps the expected position (pausing
-- where the host is now). Host only. Security definer: writes rooms.
-- -----------------------------------------------------------------------------
create function watchium_rpc.change_playback_state(
  p_room_id text,
  p_is_playing boolean,
  p_current_time numeric default null
)
returns jsonb
language plpgsql
volatile
security definer  -- updates public.rooms and writes sync history, which clients cannot
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_time    numeric;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_is_playing is null then
    raise exception 'p_is_playing must be true (play) or false (pause), not null'
      using errcode = '22023';
  end if;
  if p_current_time is not null then
    v_time := watchium_private.require_playback_time(p_current_time, 'p_current_time');
  end if;
  return watchium_private.apply_host_control(
    v_user_id, p_room_id, case when p_is_playing then 'play' else 'pause' end, p_is_playing, v_time, null
  );
end;
$$;
comment on function watchium_rpc.change_playback_state(text, boolean, numeric) is
  'Body of public.change_playback_state (same arguments, result and errors; documented there). Security definer: updates public.rooms and writes sync history, which clients cannot. Callers reach it through public.change_playback_state, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.change_playback_state(text, boolean, numeric) from public;
grant execute on function watchium_rpc.change_playback_state(text, boolean, numeric)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.change_playback_state: the Data API entry point; its body is
-- watchium_rpc.change_playback_state above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.change_playback_state(
  p_room_id text,
  p_is_playing boolean,
  p_current_time numeric default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.change_playback_state(p_room_id, p_is_playing, p_current_time);
end;
$$;
comment on function public.change_playback_state(text, boolean, numeric) is
  'Host only: play or pause at p_current_time (default: the expected position now). Writes one sync record per member, emits a playback event (members resync; see needs_resync) and returns the new state.';
revoke all on function public.change_playback_state(text, boolean, numeric) from public, anon;
grant execute on function public.change_playback_state(text, boolean, numeric) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.seek_to_time(room_id, time): host only; keeps playing or paused.
-- Security definer: writes rooms.
-- -----------------------------------------------------------------------------
create function watchium_rpc.seek_to_time(p_room_id text, p_time numeric)
returns jsonb
language plpgsql
volatile
security definer  -- updates public.rooms and writes sync history, which clients cannot
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_time    numeric;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  v_time := watchium_private.require_playback_time(p_time, 'p_time');
  return watchium_private.apply_host_control(v_user_id, p_room_id, 'seek', null, v_time, null);
end;
$$;
comment on function watchium_rpc.seek_to_time(text, numeric) is
  'Body of public.seek_to_time (same arguments, result and errors; documented there). Security definer: updates public.rooms and writes sync history, which clients cannot. Callers reach it through public.seek_to_time, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.seek_to_time(text, numeric) from public;
grant execute on function watchium_rpc.seek_to_time(text, numeric) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.seek_to_time: the Data API entry point; its body is
-- watchium_rpc.seek_to_time above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.seek_to_time(p_room_id text, p_time numeric)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.seek_to_time(p_room_id, p_time);
end;
$$;
comment on function public.seek_to_time(text, numeric) is
  'Host only: moves playback to p_time (0 to 86400 s). Writes one sync record per member, emits a playback event (members resync; see needs_resync) and returns the new state.';
revoke all on function public.seek_to_time(text, numeric) from public, anon;
grant execute on function public.seek_to_time(text, numeric) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_playback_speed(room_id, speed): host only, 0.25 to 4.0.
-- The reference is reset at the expected position, so the speed change does
-- not move the host's position. Security definer: writes rooms.
-- -----------------------------------------------------------------------------
create function watchium_rpc.set_playback_speed(p_room_id text, p_speed numeric)
returns jsonb
language plpgsql
volatile
security definer  -- updates public.rooms and writes sync history, which clients cannot
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_speed is null or p_speed = 'NaN'::numeric or p_speed not between 0.25 and 4.0 then
    raise exception 'p_speed must be a number from 0.25 to 4.0 (got %)', coalesce(p_speed::text, 'null')
      using errcode = '22023', hint = 'Common speeds: 0.5, 1, 1.25, 1.5, 2.';
  end if;
  if p_speed <> pg_catalog.round(p_speed, 2) then
    raise exception 'p_speed must have at most 2 decimals (got %)', p_speed
      using errcode = '22023';
  end if;
  return watchium_private.apply_host_control(v_user_id, p_room_id, 'speed', null, null, p_speed);
end;
$$;
comment on function watchium_rpc.set_playback_speed(text, numeric) is
  'Body of public.set_playback_speed (same arguments, result and errors; documented there). Security definer: updates public.rooms and writes sync history, which clients cannot. Callers reach it through public.set_playback_speed, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.set_playback_speed(text, numeric) from public;
grant execute on function watchium_rpc.set_playback_speed(text, numeric)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_playback_speed: the Data API entry point; its body is
-- watchium_rpc.set_playback_speed above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.set_playback_speed(p_room_id text, p_speed numeric)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.set_playback_speed(p_room_id, p_speed);
end;
$$;
comment on function public.set_playback_speed(text, numeric) is
  'Host only: sets the playback speed (0.25 to 4.0, 2 decimals) from the expected position now. Writes one sync record per member, emits a playback event and returns the new state.';
revoke all on function public.set_playback_speed(text, numeric) from public, anon;
grant execute on function public.set_playback_speed(text, numeric) to authenticated, service_role;

-- =============================================================================
-- Heartbeats
-- =============================================================================

-- -----------------------------------------------------------------------------
-- How a heartbeat writes (both forms):
--   * member_presence: last heartbeat, position, drift, level, and the level
--     before it (previous_sync_level: the UPDATE's RETURNING shows whether
--     the level changed without reading the row first). No indexed column
--     changes: HOT; the member's own row only: no hot shared row, no
--     MultiXact. The throttle is part of the UPDATE's WHERE, so a heartbeat
--     that arrives sooner than heartbeat_min_interval writes nothing.
--   * public.sync_states: a sample when the level changed or the member's
--     last sample is older than heartbeat_sample_interval;
--   * public.room_members (published): only when is_synced flips, never
--     waited for: a member row locked by another transaction is skipped (a
--     leave or kick locks room_members before its presence row cascades, so
--     waiting could deadlock); the published flag still differs afterwards,
--     so the member's next heartbeat refreshes it;
--   * a 'sync_status' room event only when the level changed.
-- Never public.rooms, and no room lock.
--
-- Durability: a heartbeat is soft state, restated by the next one seconds
-- later. When it starts its transaction (nothing written before it, as in
-- every PostgREST or client call), it commits with synchronous_commit = off:
-- a crash may lose the last few hundred milliseconds of heartbeats (presence,
-- history samples, is_synced flips) although their callers had their
-- replies; never part of one, and never a change another client saw (Realtime
-- and replicas read WAL only once it is flushed). A heartbeat that writes a 'sync_status' event commits durably, as
-- every other RPC does. docs/architecture.md, "Durability", has the table.
--
-- The single form (record_heartbeat, every 3 s per member: the hottest call
-- of the platform) is one UPDATE of its own; the batched form is one
-- set-based statement over arrays (apply_heartbeats). Both inline the
-- level CASE of watchium_private.sync_level (a function with SET is never
-- inlined); the tests hold both to the same boundaries and writes.
-- -----------------------------------------------------------------------------

-- -----------------------------------------------------------------------------
-- watchium_private.heartbeat_intervals(): heartbeat_min_interval and
-- heartbeat_sample_interval in one read.
-- -----------------------------------------------------------------------------
create function watchium_private.heartbeat_intervals(
  out min_interval interval,
  out sample_interval interval
)
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  select pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'heartbeat_min_interval'),
         pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'heartbeat_sample_interval')
  into min_interval, sample_interval
  from watchium_private.settings as s
  where s.key in ('heartbeat_min_interval', 'heartbeat_sample_interval');
end;
$$;
comment on function watchium_private.heartbeat_intervals() is
  'The settings heartbeat_min_interval and heartbeat_sample_interval, read in one statement. Internal.';
revoke all on function watchium_private.heartbeat_intervals() from public;

-- -----------------------------------------------------------------------------
-- public.record_heartbeat(room_id, current_time, is_playing): the caller's
-- own heartbeat (every 3 s). Returns its sync status against the expected
-- host position. Rate limited without a write: a heartbeat arriving sooner
-- than heartbeat_min_interval after the previous one raises WD429.
-- Security definer: writes member_presence, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.record_heartbeat(
  p_room_id text,
  p_current_time numeric,
  p_is_playing boolean
)
returns jsonb
language plpgsql
volatile
security definer  -- writes watchium_private.member_presence and sync history
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id   text := watchium_private.require_user_id();
  v_time      numeric := watchium_private.require_playback_time(p_current_time, 'p_current_time');
  v_intervals record;
  v          record;
begin
  -- Sizes first (22001), before any other work; inline on this hot path.
  if pg_catalog.octet_length(p_room_id) > 40 then
    perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  end if;
  if p_is_playing is null then
    raise exception 'p_is_playing must be true or false, not null' using errcode = '22023';
  end if;
  -- Soft state: a heartbeat that starts its transaction commits without
  -- waiting for the WAL flush (the next one, seconds later, restates it). A
  -- transaction that has written before us keeps its durability, and a room
  -- event written after this point restores it (commit_durably).
  if pg_catalog.pg_current_xact_id_if_assigned() is null then
    perform pg_catalog.set_config('watchium.soft_commit',
                                  pg_catalog.current_setting('synchronous_commit'), true),
            pg_catalog.set_config('synchronous_commit', 'off', true);
  end if;
  v_intervals := watchium_private.heartbeat_intervals();

  -- One statement: the room (expected position), the member's published
  -- flag and the presence update. Nothing is updated when the caller is not
  -- a member, the room does not exist, or the heartbeat is too soon.
  update watchium_private.member_presence as p
  set last_heartbeat = pg_catalog.now(),
      reported_time = v_time,
      is_playing = p_is_playing,
      time_difference = d.drift,
      previous_sync_level = p.sync_level,
      sync_level = d.level,
      last_sample_at = case
        when p.sync_level is distinct from d.level
          or p.last_sample_at is null
          or p.last_sample_at <= pg_catalog.now() - v_intervals.sample_interval
          then pg_catalog.now()
        else p.last_sample_at
      end
  from (
    select r.is_playing as room_is_playing, r.playback_speed, e.expected, x.drift,
           -- watchium_private.sync_level, inlined.
           case when x.drift <= 0.5 then 'perfect'
                when x.drift <= 1 then 'good'
                when x.drift <= 2 then 'minor_drift'
                else 'out_of_sync' end as level,
           m.is_synced as published_is_synced
    from public.rooms as r
    join public.room_members as m on m.room_id = r.room_id and m.user_id = v_user_id
    cross join lateral (select watchium_private.room_expected_position(r) as expected) as e
    cross join lateral (select pg_catalog.round(abs(v_time - e.expected), 2) as drift) as x
    where r.room_id = p_room_id
  ) as d
  where p.room_id = p_room_id
    and p.user_id = v_user_id
    -- last_sample_at is set by heartbeats only: the first heartbeat right
    -- after joining (last_heartbeat = join time) is never throttled.
    and (p.last_sample_at is null
         or p.last_heartbeat <= pg_catalog.now() - v_intervals.min_interval)
  returning d.expected, d.drift, d.level, d.room_is_playing, d.playback_speed,
            d.published_is_synced, p.previous_sync_level,
            p.last_sample_at = pg_catalog.now() as sampled
  into v;

  if not found then
    perform watchium_private.require_sync_room(p_room_id, v_user_id);  -- P0002, 42501
    raise exception 'heartbeats of one member are accepted at most once per %',
      v_intervals.min_interval
      using errcode = 'WD429',
            hint = pg_catalog.format('Send heartbeats every few seconds; retry after %s.',
                                     v_intervals.min_interval);
  end if;

  if v.sampled then
    insert into public.sync_states
      (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type)
    values (p_room_id, v_user_id, v.expected, v_time, v.drift, v.drift <= 2, 'heartbeat');
  end if;
  if v.published_is_synced is distinct from (v.drift <= 2) then
    update public.room_members as rm
    set is_synced = v.drift <= 2,
        current_playback_time = v_time,
        last_heartbeat = pg_catalog.now()
    where rm.ctid = (
      select m.ctid from public.room_members as m
      where m.room_id = p_room_id and m.user_id = v_user_id
      for no key update skip locked
    );
  end if;
  if v.previous_sync_level is distinct from v.level then
    perform watchium_private.emit_room_event(
      p_room_id,
      'sync_status',
      pg_catalog.jsonb_build_object(
        'user_id', v_user_id,
        'sync_level', v.level,
        'previous_level', v.previous_sync_level,
        'is_synced', v.drift <= 2,
        'time_difference', v.drift,
        'expected_time', v.expected
      )
    );
  end if;

  return pg_catalog.jsonb_build_object(
    'room_id', p_room_id,
    'current_time', v_time,
    'expected_time', v.expected,
    'time_difference', v.drift,
    'is_synced', v.drift <= 2,
    'sync_level', v.level,
    'is_playing', v.room_is_playing,
    'playback_speed', v.playback_speed,
    'server_time', pg_catalog.now()
  );
end;
$$;
comment on function watchium_rpc.record_heartbeat(text, numeric, boolean) is
  'Body of public.record_heartbeat (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_presence and sync history. Callers reach it through public.record_heartbeat, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.record_heartbeat(text, numeric, boolean) from public;
grant execute on function watchium_rpc.record_heartbeat(text, numeric, boolean)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.record_heartbeat: the Data API entry point; its body is
-- watchium_rpc.record_heartbeat above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.record_heartbeat(
  p_room_id text,
  p_current_time numeric,
  p_is_playing boolean
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.record_heartbeat(p_room_id, p_current_time, p_is_playing);
end;
$$;
comment on function public.record_heartbeat(text, numeric, boolean) is
  'The caller''s heartbeat in p_room_id: stores presence (no published write unless is_synced flips) and returns time_difference, is_synced (<= 2 s) and sync_level (perfect <= 0.5, good <= 1, minor_drift <= 2, out_of_sync) against the expected host position. WD429 when sooner than heartbeat_min_interval.';
revoke all on function public.record_heartbeat(text, numeric, boolean) from public, anon;
grant execute on function public.record_heartbeat(text, numeric, boolean) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- watchium_private.apply_heartbeats(room, user_ids, times, playing): the
-- batched write path: one set-based statement for any number of members of
-- one room. The arrays are validated (same length, no nulls, no duplicate
-- user ids, times 0 to 86400). Per member: outcome 'ok', 'not_member' or
-- 'throttled' (its previous heartbeat is younger than heartbeat_min_interval;
-- nothing written). Rows are updated in user_id order: two batches of one
-- room never deadlock.
-- plan_cache_mode: the arrays' sizes vary, so PL/pgSQL would otherwise plan
-- this statement again on every call (a custom plan costs more than the
-- whole execution of a 50-member batch).
-- enable_seqscan / enable_bitmapscan off: rows are locked in the order the
-- UPDATE reaches them, and two batches of one room must reach them in the
-- same order or they can deadlock. The heartbeats are sorted by user_id and
-- the primary key index returns presence rows in (room_id, user_id) order,
-- whichever side of the join it is on; a sequential or bitmap scan returns
-- them in heap order, which differs between two transactions' snapshots once
-- HOT updates have moved row versions (the reliability tests caught such a
-- deadlock between two relays of one room).
-- -----------------------------------------------------------------------------
create function watchium_private.apply_heartbeats(
  p_room public.rooms,
  p_user_ids text[],
  p_times numeric[],
  p_playing boolean[]
)
returns table (
  user_id         text,
  outcome         text,
  reported_time   numeric,
  expected_time   numeric,
  time_difference numeric,
  is_synced       boolean,
  sync_level      text
)
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_bitmapscan = off
as $$
#variable_conflict use_column
declare
  v_expected  numeric := watchium_private.room_expected_position(p_room);
  v_intervals record := watchium_private.heartbeat_intervals();
begin
  return query
  with beat as materialized (
    select b.user_id, b.reported, b.is_playing, d.drift,
           -- watchium_private.sync_level, inlined.
           case when d.drift <= 0.5 then 'perfect'
                when d.drift <= 1 then 'good'
                when d.drift <= 2 then 'minor_drift'
                else 'out_of_sync' end as level
    from rows from (pg_catalog.unnest(p_user_ids), pg_catalog.unnest(p_times), pg_catalog.unnest(p_playing))
      as a(user_id, t, is_playing)
    cross join lateral (select a.user_id, pg_catalog.round(a.t, 2) as reported, a.is_playing) as b
    cross join lateral (select pg_catalog.round(abs(b.reported - v_expected), 2) as drift) as d
    order by b.user_id  -- key order: two batches of one room never deadlock
  ),
  presence as (
    update watchium_private.member_presence as p
    set last_heartbeat = pg_catalog.now(),
        reported_time = b.reported,
        is_playing = b.is_playing,
        time_difference = b.drift,
        previous_sync_level = p.sync_level,
        sync_level = b.level,
        last_sample_at = case
          when p.sync_level is distinct from b.level
            or p.last_sample_at is null
            or p.last_sample_at <= pg_catalog.now() - v_intervals.sample_interval
            then pg_catalog.now()
          else p.last_sample_at
        end
    from beat as b
    where p.room_id = p_room.room_id
      and p.user_id = b.user_id
      and (p.last_sample_at is null
           or p.last_heartbeat <= pg_catalog.now() - v_intervals.min_interval)
    returning p.user_id, p.reported_time, p.time_difference, p.sync_level, p.previous_sync_level,
              p.last_sample_at = pg_catalog.now() as sampled
  ),
  history as (
    insert into public.sync_states
      (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type)
    select p_room.room_id, u.user_id, v_expected, u.reported_time, u.time_difference,
           u.time_difference <= 2, 'heartbeat'
    from presence as u
    where u.sampled
  ),
  flipped as (
    select rm.user_id, u.reported_time, u.time_difference <= 2 as synced
    from public.room_members as rm
    join presence as u on u.user_id = rm.user_id
    where rm.room_id = p_room.room_id
      and rm.is_synced is distinct from (u.time_difference <= 2)
    for no key update of rm skip locked
  ),
  published as (
    update public.room_members as rm
    set is_synced = f.synced,
        current_playback_time = f.reported_time,
        last_heartbeat = pg_catalog.now()
    from flipped as f
    where rm.room_id = p_room.room_id
      and rm.user_id = f.user_id
  ),
  events as (
    select watchium_private.emit_room_event(
             p_room.room_id,
             'sync_status',
             pg_catalog.jsonb_build_object(
               'user_id', u.user_id,
               'sync_level', u.sync_level,
               'previous_level', u.previous_sync_level,
               'is_synced', u.time_difference <= 2,
               'time_difference', u.time_difference,
               'expected_time', v_expected
             )
           ) as event_id
    from presence as u
    where u.sync_level is distinct from u.previous_sync_level
  )
  select b.user_id,
         case
           when u.user_id is not null then 'ok'
           when exists (
             select from watchium_private.member_presence as p
             where p.room_id = p_room.room_id and p.user_id = b.user_id
           ) then 'throttled'
           else 'not_member'
         end,
         b.reported, v_expected, b.drift, b.drift <= 2, b.level
  from beat as b
  left join presence as u on u.user_id = b.user_id
  -- events is a SELECT: it runs only when read.
  where (select pg_catalog.count(*) from events) >= 0
  order by b.user_id;
end;
$$;
comment on function watchium_private.apply_heartbeats(public.rooms, text[], numeric[], boolean[]) is
  'Batched heartbeat write path of one room, one statement: presence (HOT), sampled history, published snapshot only on is_synced flips, sync_status events only on level changes; outcome ok, throttled or not_member per member. Arguments validated by the caller. Never touches public.rooms. Internal.';
revoke all on function watchium_private.apply_heartbeats(public.rooms, text[], numeric[], boolean[]) from public;

-- -----------------------------------------------------------------------------
-- public.record_heartbeats(room_id, user_ids, current_times, is_playing): the
-- batched form for an edge server relaying Realtime presence: three arrays of
-- the same length (1 to 1000), element i being one member's heartbeat.
-- Trusted callers only (service_role): it writes other users' presence.
-- Rate limited per member without a write, like record_heartbeat: members
-- whose previous heartbeat is younger than heartbeat_min_interval are skipped
-- as throttled (a counter per call was a write per batch, and cost as much as
-- the rest of a 50-member batch); non-members come back as not_member; one
-- row per element with its outcome and sync status.
-- Security definer: writes member_presence, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.record_heartbeats(
  p_room_id text,
  p_user_ids text[],
  p_current_times numeric[],
  p_is_playing boolean[]
)
returns table (
  user_id         text,
  outcome         text,
  reported_time   numeric,
  expected_time   numeric,
  time_difference numeric,
  is_synced       boolean,
  sync_level      text,
  server_time     timestamptz
)
language plpgsql
volatile
security definer  -- writes watchium_private.member_presence and sync history
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  v_n    integer := pg_catalog.cardinality(p_user_ids);
  v_room public.rooms;
  v_bad  text;
begin
  -- Sizes first (22001), before any other work; inline on this hot path.
  if pg_catalog.octet_length(p_room_id) > 40 then
    perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  end if;
  if pg_catalog.pg_column_size(p_user_ids) > 409600 then
    perform watchium_private.check_size('p_user_ids', pg_catalog.pg_column_size(p_user_ids), 409600);
  end if;
  if pg_catalog.pg_column_size(p_current_times) > 65536 then
    perform watchium_private.check_size('p_current_times', pg_catalog.pg_column_size(p_current_times), 65536);
  end if;
  if pg_catalog.pg_column_size(p_is_playing) > 2048 then
    perform watchium_private.check_size('p_is_playing', pg_catalog.pg_column_size(p_is_playing), 2048);
  end if;
  if not watchium_private.caller_is_trusted() then
    raise exception 'record_heartbeats relays other users'' heartbeats: service_role only'
      using errcode = '42501', hint = 'Clients call record_heartbeat for themselves.';
  end if;
  if v_n is null or v_n not between 1 and 1000 or pg_catalog.array_ndims(p_user_ids) <> 1 then
    raise exception 'p_user_ids must be an array of 1 to 1000 user ids (got %)',
      coalesce(v_n::text, 'null')
      using errcode = '22023',
            hint = 'Element i of p_user_ids, p_current_times and p_is_playing is one member''s heartbeat.';
  end if;
  if pg_catalog.cardinality(p_current_times) is distinct from v_n
     or pg_catalog.array_ndims(p_current_times) <> 1 then
    raise exception 'p_current_times must have one time per user id (% expected, got %)',
      v_n, coalesce(pg_catalog.cardinality(p_current_times)::text, 'null')
      using errcode = '22023';
  end if;
  if pg_catalog.cardinality(p_is_playing) is distinct from v_n
     or pg_catalog.array_ndims(p_is_playing) <> 1 then
    raise exception 'p_is_playing must have one flag per user id (% expected, got %)',
      v_n, coalesce(pg_catalog.cardinality(p_is_playing)::text, 'null')
      using errcode = '22023';
  end if;

  -- Cheap checks of the whole batch first; the first bad element is looked
  -- up only when one fails, so that the message can name it. 'NaN' passes
  -- `between` in neither direction, but is named anyway.
  if exists (
       select
       from rows from (pg_catalog.unnest(p_user_ids), pg_catalog.unnest(p_current_times),
                       pg_catalog.unnest(p_is_playing)) as x(user_id, t, playing)
       where x.user_id is null or pg_catalog.char_length(x.user_id) not between 1 and 100
          or x.t is null or x.t = 'NaN'::numeric or x.t not between 0 and 86400
          or x.playing is null
     )
     or (select pg_catalog.count(distinct u) from pg_catalog.unnest(p_user_ids) as u) <> v_n
  then
    select b.problem into v_bad
    from (
      select x.i,
             case
               when x.user_id is null or pg_catalog.char_length(x.user_id) not between 1 and 100
                 then pg_catalog.format('p_user_ids[%s] must be a user id of 1 to 100 characters', x.i)
               when x.t is null or x.t = 'NaN'::numeric or x.t not between 0 and 86400
                 then pg_catalog.format('p_current_times[%s] must be a number of seconds from 0 to 86400 (got %s)',
                                        x.i, coalesce(x.t::text, 'null'))
               when x.playing is null
                 then pg_catalog.format('p_is_playing[%s] must be true or false, not null', x.i)
               when pg_catalog.count(*) over (partition by x.user_id) > 1
                 then pg_catalog.format('p_user_ids[%s]: %s appears more than once', x.i,
                                        pg_catalog.quote_literal(x.user_id))
             end as problem
      from rows from (pg_catalog.unnest(p_user_ids), pg_catalog.unnest(p_current_times),
                      pg_catalog.unnest(p_is_playing)) with ordinality as x(user_id, t, playing, i)
    ) as b
    where b.problem is not null
    order by b.i
    limit 1;
    raise exception '%', v_bad
      using errcode = '22023',
            hint = 'One heartbeat per member: element i of p_user_ids, p_current_times (0 to 86400 s) and p_is_playing.';
  end if;

  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  if not found then
    raise exception 'p_room_id % does not name a room', pg_catalog.quote_nullable(p_room_id)
      using errcode = 'P0002';
  end if;

  -- Soft state, as in record_heartbeat: no wait for the WAL flush unless the
  -- transaction wrote before us or a member's level change writes an event.
  if pg_catalog.pg_current_xact_id_if_assigned() is null then
    perform pg_catalog.set_config('watchium.soft_commit',
                                  pg_catalog.current_setting('synchronous_commit'), true),
            pg_catalog.set_config('synchronous_commit', 'off', true);
  end if;

  return query
  select h.user_id, h.outcome, h.reported_time, h.expected_time, h.time_difference,
         h.is_synced, h.sync_level, pg_catalog.now()
  from watchium_private.apply_heartbeats(v_room, p_user_ids, p_current_times, p_is_playing) as h;
end;
$$;
comment on function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[]) is
  'Body of public.record_heartbeats (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_presence and sync history. Callers reach it through public.record_heartbeats, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[]) from public;
grant execute on function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[])
  to service_role;

-- -----------------------------------------------------------------------------
-- public.record_heartbeats: the Data API entry point; its body is
-- watchium_rpc.record_heartbeats above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.record_heartbeats(
  p_room_id text,
  p_user_ids text[],
  p_current_times numeric[],
  p_is_playing boolean[]
)
returns table (
  user_id         text,
  outcome         text,
  reported_time   numeric,
  expected_time   numeric,
  time_difference numeric,
  is_synced       boolean,
  sync_level      text,
  server_time     timestamptz
)
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return query select * from watchium_rpc.record_heartbeats(p_room_id, p_user_ids, p_current_times,
    p_is_playing);
end;
$$;
comment on function public.record_heartbeats(text, text[], numeric[], boolean[]) is
  'service_role only: many members'' heartbeats of one room in one call (element i of p_user_ids, p_current_times, p_is_playing; 1 to 1000). One row per member: outcome (ok, throttled, not_member) and sync status. Rate limited per member by heartbeat_min_interval (too early: throttled, nothing written).';
revoke all on function public.record_heartbeats(text, text[], numeric[], boolean[]) from public, anon, authenticated;
grant execute on function public.record_heartbeats(text, text[], numeric[], boolean[]) to service_role;

-- =============================================================================
-- The "Live" button
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.get_room_sync_state(room_id): where the host is now, and how the
-- caller and the room stand. Members only (trusted callers: any room; their
-- "me" is null). Read only.
-- Security definer: reads member_presence, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room_sync_state(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads watchium_private.member_presence
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text;
  v_room     public.rooms;
  v_expected numeric;
  v_me       jsonb;
  v_stats    jsonb;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
  end if;
  v_room := watchium_private.require_sync_room(p_room_id, v_user_id);
  v_expected := watchium_private.room_expected_position(v_room);

  if v_user_id is not null then
    select pg_catalog.jsonb_build_object(
             'user_id', p.user_id,
             'estimated_time', x.estimated,
             'time_difference', pg_catalog.round(abs(x.estimated - v_expected), 2),
             'is_synced', abs(x.estimated - v_expected) <= 2,
             'sync_level', watchium_private.sync_level(pg_catalog.round(abs(x.estimated - v_expected), 2)),
             'needs_resync', watchium_private.needs_resync(
               p.last_heartbeat, p.time_difference, v_room.playback_updated_at,
               p.user_id = v_room.host_user_id),
             'last_heartbeat', p.last_heartbeat
           )
    into v_me
    from watchium_private.member_presence as p
    cross join lateral (
      select case
        -- The host's own control is newer than its last heartbeat: it is
        -- where it just put the room.
        when v_user_id = v_room.host_user_id and p.last_heartbeat < v_room.playback_updated_at
          then v_expected
        else pg_catalog.round(least(86400::numeric,
               p.reported_time + case when p.is_playing then
                 extract(epoch from greatest(pg_catalog.now() - p.last_heartbeat, interval '0'))
                   * v_room.playback_speed
               else 0 end), 2)
      end as estimated
    ) as x
    where p.room_id = p_room_id and p.user_id = v_user_id;
  end if;

  -- Derived, not the published is_synced: right after a control every
  -- member that has not reported since needs to resync (needs_resync).
  select pg_catalog.jsonb_build_object(
           'members', pg_catalog.count(*),
           'synced_members', pg_catalog.count(*) filter (where not r.needs_resync),
           'needs_resync_members', pg_catalog.count(*) filter (where r.needs_resync),
           'sync_percentage', case when pg_catalog.count(*) = 0 then null
             else pg_catalog.round(100.0 * pg_catalog.count(*) filter (where not r.needs_resync) / pg_catalog.count(*), 1) end
         )
  into v_stats
  from public.room_members as m
  left join watchium_private.member_presence as p
    on p.room_id = m.room_id and p.user_id = m.user_id
  cross join lateral (
    select watchium_private.needs_resync(
             p.last_heartbeat, p.time_difference, v_room.playback_updated_at,
             m.user_id = v_room.host_user_id) as needs_resync
  ) as r
  where m.room_id = p_room_id;

  return pg_catalog.jsonb_build_object(
    'room_id', v_room.room_id,
    'expected_time', v_expected,
    'is_playing', v_room.is_playing,
    'playback_speed', v_room.playback_speed,
    'anime_id', v_room.anime_id,
    'episode_number', v_room.episode_number,
    'video_url', v_room.video_url,
    'host_user_id', v_room.host_user_id,
    'host_username', v_room.host_username,
    'server_time', pg_catalog.now(),
    'me', v_me,
    'stats', v_stats
  );
end;
$$;
comment on function watchium_rpc.get_room_sync_state(text) is
  'Body of public.get_room_sync_state (same arguments, result and errors; documented there). Security definer: reads watchium_private.member_presence. Callers reach it through public.get_room_sync_state, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room_sync_state(text) from public;
grant execute on function watchium_rpc.get_room_sync_state(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_sync_state: the Data API entry point; its body is
-- watchium_rpc.get_room_sync_state above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_room_sync_state(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room_sync_state(p_room_id);
end;
$$;
comment on function public.get_room_sync_state(text) is
  'The Live button: the expected host position now, playing state, speed, episode, host, the caller''s own sync status (its position extrapolated from its last heartbeat, needs_resync) and the room''s members / synced members / members needing a resync / sync percentage (derived: watchium_private.needs_resync). Members only.';
revoke all on function public.get_room_sync_state(text) from public, anon;
grant execute on function public.get_room_sync_state(text) to authenticated, service_role;

-- =============================================================================
-- Sync history partitions
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.create_sync_history_table(name, hour): the not yet attached
-- table of one hour of sync history: LIKE public.sync_states (defaults,
-- constraints, compression, the index), plus a CHECK constraint equal to the
-- partition bound so that ATTACH PARTITION need not scan it. Row level
-- security on, no privileges for the API roles (Supabase's default privileges
-- would grant them ALL), replica identity FULL (no key; see 0006).
-- -----------------------------------------------------------------------------
create function watchium_private.create_sync_history_table(p_name text, p_hour timestamptz)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  execute pg_catalog.format(
    'create table public.%I (like public.sync_states including defaults including constraints'
    ' including compression including indexes, constraint %I check (created_at >= %L and created_at < %L))',
    p_name, p_name || '_bound_check', p_hour, p_hour + interval '1 hour');
  execute pg_catalog.format('alter table public.%I enable row level security', p_name);
  execute pg_catalog.format('alter table public.%I replica identity full', p_name);
  execute pg_catalog.format('revoke all on table public.%I from public, anon, authenticated, service_role', p_name);
  execute pg_catalog.format(
    'comment on table public.%I is %L', p_name,
    'Sync history of the UTC hour starting ' || pg_catalog.to_char(p_hour at time zone 'UTC', 'YYYY-MM-DD HH24:00')
      || '. Created by watchium_private.maintain_sync_history; read through public.sync_states.');
end;
$$;
comment on function watchium_private.create_sync_history_table(text, timestamptz) is
  'Creates the table for the sync history hour p_hour (named p_name), ready to be attached to public.sync_states without a scan (CHECK constraint equal to the bound). Internal; run by maintain_sync_history.';
revoke all on function watchium_private.create_sync_history_table(text, timestamptz) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.maintain_sync_history(): keeps public.sync_states in
-- hourly partitions (UTC hours, named sync_states_pYYYYMMDDHH) without ever
-- making the hot path wait on it (the partition lifecycle of
-- docs/architecture.md):
--   * create: the partitions of the current hour and sync_history_premake
--     (a day) ahead are created as plain tables (LIKE the parent, with a CHECK
--     constraint equal to the partition bound) and attached with ALTER TABLE
--     ... ATTACH PARTITION: SHARE UPDATE EXCLUSIVE on the parent (readers and
--     writers go on), ACCESS EXCLUSIVE on the new table and on the default
--     partition (kept empty, so its scan is instant); the CHECK lets ATTACH
--     skip the scan of the new table. A table of that name that exists but is
--     not attached (detached by hand, or filled from the default partition
--     below) is attached the same way;
--   * drain: rows in the default partition (only there when maintenance did
--     not run) move to their hour's table, at most sync_history_drain_batch
--     rows per run; expired ones are deleted, as many at most; an hour is
--     attached once the default partition holds none of its rows;
--   * retire: partitions that ended sync_history_retention ago or earlier are
--     detached (plain DETACH PARTITION: CONCURRENTLY is refused while the
--     table has a default partition) and dropped;
--   * deletes client metrics older than realtime_metrics_retention.
-- Every DDL step runs in its own subtransaction under lock_timeout =
-- maintenance_lock_timeout: a step that cannot get its lock at once (a long
-- reader, a long writer of the default partition) is skipped, reported in
-- "skipped" and retried by the next run; after the first lock timeout the
-- run attempts no further DDL (one short wait per run at most). Partitions a
-- day ahead make skipped runs harmless.
-- New partitions get row level security, no privileges for the API roles
-- (Supabase's default privileges would grant them ALL) and replica identity
-- FULL (the table has no key; see 0006). One run at a time (transaction
-- advisory lock; a concurrent run returns at once). Run by public.maintain().
-- -----------------------------------------------------------------------------
create function watchium_private.maintain_sync_history()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now       timestamptz := pg_catalog.now();
  v_retention interval := coalesce(watchium_private.setting_interval('sync_history_retention'), interval '6 hours');
  v_premake   interval := coalesce(watchium_private.setting_interval('sync_history_premake'), interval '1 day');
  v_metrics   interval := coalesce(watchium_private.setting_interval('realtime_metrics_retention'), interval '24 hours');
  v_timeout   interval := coalesce(watchium_private.setting_interval('maintenance_lock_timeout'), interval '50 milliseconds');
  v_batch     bigint := coalesce(
                (select (s.value #>> '{}')::bigint from watchium_private.settings as s
                 where s.key = 'sync_history_drain_batch'), 10000);
  v_this_hour timestamptz := pg_catalog.date_trunc('hour', v_now at time zone 'UTC') at time zone 'UTC';
  v_cutoff    timestamptz := v_now - v_retention;
  v_hour      timestamptz;
  v_name      text;
  v_count     bigint;
  v_left      bigint;
  v_attached  boolean;
  v_exists    boolean;
  v_ddl_ok    boolean := true;
  v_created   text[] := '{}'::text[];
  v_attached_names text[] := '{}'::text[];
  v_dropped   text[] := '{}'::text[];
  v_skipped   jsonb := '[]'::jsonb;
  v_moved_total bigint := 0;
  v_expired   bigint := 0;
  v_metrics_expired bigint := 0;
begin
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('watchium_private.maintain_sync_history')) then
    return pg_catalog.jsonb_build_object(
      'created', '[]'::jsonb, 'attached', '[]'::jsonb, 'dropped', '[]'::jsonb,
      'moved_from_default', 0, 'expired_from_default', 0, 'left_in_default', null,
      'metrics_expired', 0,
      'skipped', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'step', 'run', 'table', null, 'reason', 'another maintenance run is in progress')));
  end if;
  perform pg_catalog.set_config('lock_timeout',
    ((pg_catalog.date_part('epoch', v_timeout) * 1000)::bigint)::text || 'ms', true);

  -- Drain, expired rows: deleted, at most v_batch.
  begin
    delete from public.sync_states_default as d
    where d.ctid = any (array(
      select x.ctid from public.sync_states_default as x where x.created_at < v_cutoff limit v_batch));
    get diagnostics v_expired = row_count;
  exception when lock_not_available then
    v_ddl_ok := false;
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'step', 'drain', 'table', 'sync_states_default', 'reason', 'lock timeout');
  end;

  -- Drain, unexpired rows: moved to their hour's table (created detached when
  -- missing; attached below), at most v_batch in all.
  v_left := v_batch;
  for v_hour in
    select distinct pg_catalog.date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC'
    from (select d.created_at from public.sync_states_default as d
          where d.created_at >= v_cutoff limit v_batch) as x
    order by 1
  loop
    exit when not v_ddl_ok or v_left <= 0;
    v_name := 'sync_states_p' || pg_catalog.to_char(v_hour at time zone 'UTC', 'YYYYMMDDHH24');
    begin
      if pg_catalog.to_regclass('public.' || v_name) is null then
        perform watchium_private.create_sync_history_table(v_name, v_hour);
        v_created := v_created || v_name;
      end if;
      execute pg_catalog.format(
        'with moved as (delete from public.sync_states_default where ctid = any (array('
        '  select ctid from public.sync_states_default where created_at >= $1 and created_at < $2 limit $3)) returning *)'
        ' insert into public.%I select * from moved', v_name)
        using v_hour, v_hour + interval '1 hour', v_left;
      get diagnostics v_count = row_count;
      v_moved_total := v_moved_total + v_count;
      v_left := v_left - v_count;
    exception
      when lock_not_available then
        v_ddl_ok := false;
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'drain', 'table', v_name, 'reason', 'lock timeout');
      when others then
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'drain', 'table', v_name, 'reason', sqlerrm, 'sqlstate', sqlstate);
    end;
  end loop;

  -- Create and attach: this hour and the premake window ahead, plus every
  -- unexpired table of ours that is not attached (drained above, or detached).
  for v_hour in
    select h from pg_catalog.generate_series(v_this_hour, v_this_hour + v_premake, interval '1 hour') as h
    union
    select pg_catalog.to_timestamp(pg_catalog.substr(c.relname, 14), 'YYYYMMDDHH24')::timestamp at time zone 'UTC'
    from pg_catalog.pg_class as c
    where c.relnamespace = 'public'::pg_catalog.regnamespace
      and c.relkind = 'r'
      and c.relname ~ '^sync_states_p[0-9]{10}$'
      and not c.relispartition
    order by 1
  loop
    exit when not v_ddl_ok;
    continue when v_hour + interval '1 hour' <= v_cutoff;
    v_name := 'sync_states_p' || pg_catalog.to_char(v_hour at time zone 'UTC', 'YYYYMMDDHH24');
    select true, c.relispartition into v_exists, v_attached
    from pg_catalog.pg_class as c
    where c.oid = pg_catalog.to_regclass('public.' || v_name);
    continue when v_attached;
    begin
      if v_exists is null then
        perform watchium_private.create_sync_history_table(v_name, v_hour);
        v_created := v_created || v_name;
      else
        -- Ours but detached: give it back its bound (a scan of that table
        -- only, under its own lock) unless it still has it.
        if not exists (select from pg_catalog.pg_constraint as k
                       where k.conrelid = pg_catalog.to_regclass('public.' || v_name)
                         and k.conname = v_name || '_bound_check') then
          execute pg_catalog.format(
            'alter table public.%I add constraint %I check (created_at >= %L and created_at < %L)',
            v_name, v_name || '_bound_check', v_hour, v_hour + interval '1 hour');
        end if;
      end if;
      -- Catching up (this hour or a past one has no partition, so writers are
      -- routing its rows into the default partition right now): a writer that
      -- routed to the default partition before the attach would insert there
      -- after it and fail (23514). EXCLUSIVE on the parent makes writers wait
      -- for the attach instead (then they route to the new partition); readers
      -- go on. Never needed for partitions made ahead.
      if v_hour < pg_catalog.clock_timestamp() + interval '5 minutes' then
        lock table public.sync_states in exclusive mode;
      end if;
      -- The default partition must hold no row of this hour (ATTACH checks it):
      -- only then lock it (ATTACH needs that lock anyway) and move what came
      -- in meanwhile, if that is a bounded amount.
      if exists (select from public.sync_states_default as d
                 where d.created_at >= v_hour and d.created_at < v_hour + interval '1 hour') then
        lock table public.sync_states_default in access exclusive mode;
        select pg_catalog.count(*) into v_count
        from (select from public.sync_states_default as d
              where d.created_at >= v_hour and d.created_at < v_hour + interval '1 hour'
              limit v_left + 1) as x;
        if v_count > v_left then
          raise exception 'rows of this hour are still in the default partition (drained in batches of %)', v_batch;
        end if;
        execute pg_catalog.format(
          'with moved as (delete from public.sync_states_default where created_at >= $1 and created_at < $2 returning *)'
          ' insert into public.%I select * from moved', v_name)
          using v_hour, v_hour + interval '1 hour';
        get diagnostics v_count = row_count;
        v_moved_total := v_moved_total + v_count;
        v_left := v_left - v_count;
      end if;
      execute pg_catalog.format(
        'alter table public.sync_states attach partition public.%I for values from (%L) to (%L)',
        v_name, v_hour, v_hour + interval '1 hour');
      v_attached_names := v_attached_names || v_name;
    exception
      when lock_not_available then
        v_ddl_ok := false;
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'attach', 'table', v_name, 'reason', 'lock timeout');
      when others then
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'attach', 'table', v_name, 'reason', sqlerrm, 'sqlstate', sqlstate);
    end;
    v_exists := null;
    v_attached := null;
  end loop;
  -- "created" lists the tables created and attached in this run.
  v_created := array(select n from pg_catalog.unnest(v_created) as n
                     where n = any (v_attached_names) order by n);
  v_attached_names := array(select n from pg_catalog.unnest(v_attached_names) as n
                            where n <> all (v_created) order by n);

  -- Retire: expired tables of ours, attached (detach, then drop) or not (drop).
  for v_name, v_attached in
    select c.relname, c.relispartition
    from pg_catalog.pg_class as c
    where c.relnamespace = 'public'::pg_catalog.regnamespace
      and c.relkind = 'r'
      and c.relname ~ '^sync_states_p[0-9]{10}$'
      and (c.relispartition = false
           or exists (select from pg_catalog.pg_inherits as i
                      where i.inhrelid = c.oid and i.inhparent = 'public.sync_states'::pg_catalog.regclass))
      and (pg_catalog.to_timestamp(pg_catalog.substr(c.relname, 14), 'YYYYMMDDHH24')::timestamp
             at time zone 'UTC') + interval '1 hour' <= v_cutoff
    order by c.relname
  loop
    exit when not v_ddl_ok;
    begin
      if v_attached then
        execute pg_catalog.format('alter table public.sync_states detach partition public.%I', v_name);
      end if;
      execute pg_catalog.format('drop table public.%I', v_name);
      v_dropped := v_dropped || v_name;
    exception
      when lock_not_available then
        v_ddl_ok := false;
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'retire', 'table', v_name, 'reason', 'lock timeout');
      when others then
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'retire', 'table', v_name, 'reason', sqlerrm, 'sqlstate', sqlstate);
    end;
  end loop;

  begin
    delete from watchium_private.realtime_metrics as rm where rm.recorded_at < v_now - v_metrics;
    get diagnostics v_metrics_expired = row_count;
  exception when lock_not_available then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'step', 'metrics', 'table', 'realtime_metrics', 'reason', 'lock timeout');
  end;

  -- Bounded count: a default partition that needs more than one run says so.
  select pg_catalog.count(*) into v_count
  from (select from public.sync_states_default limit v_batch + 1) as x;
  return pg_catalog.jsonb_build_object(
    'created', pg_catalog.to_jsonb(v_created),
    'attached', pg_catalog.to_jsonb(v_attached_names),
    'dropped', pg_catalog.to_jsonb(v_dropped),
    'moved_from_default', v_moved_total,
    'expired_from_default', v_expired,
    'left_in_default', v_count,
    'metrics_expired', v_metrics_expired,
    'skipped', v_skipped
  );
end;
$$;
comment on function watchium_private.maintain_sync_history() is
  'The partition lifecycle of public.sync_states: creates hourly partitions this hour + sync_history_premake ahead (CREATE TABLE with the bound as CHECK, then ATTACH PARTITION), re-attaches tables of ours that are detached, moves at most sync_history_drain_batch rows out of the default partition per run, detaches and drops partitions older than sync_history_retention, expires old realtime metrics. Each DDL step under lock_timeout = maintenance_lock_timeout; a step that cannot get its lock is skipped (listed in "skipped") and retried by the next run. Returns what it did. Internal; run by maintenance.';
revoke all on function watchium_private.maintain_sync_history() from public;

-- =============================================================================
-- Metrics
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.get_room_sync_metrics(room_id): the seed's sync metrics over the
-- last minute. Drift statistics come from the sync_states samples of the
-- minute (heartbeat samples and host-control rows); member counts from the
-- presence of members that sent a heartbeat in the minute, classified by the
-- derived rule (needs_resync). healthy is false below 80 % synced among the
-- measured members (the seed's alert threshold), null when none.
-- Members only (trusted callers: any room).
-- Security definer: reads member_presence, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room_sync_metrics(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads watchium_private.member_presence
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_since   timestamptz := pg_catalog.now() - interval '1 minute';
  v_room    public.rooms;
  v_drift   jsonb;
  v_members jsonb;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
  end if;
  v_room := watchium_private.require_sync_room(p_room_id, v_user_id);

  select pg_catalog.jsonb_build_object(
           'samples', pg_catalog.count(*),
           'avg_drift', pg_catalog.round(pg_catalog.avg(s.time_difference), 2),
           'p95_drift', pg_catalog.round((pg_catalog.percentile_cont(0.95) within group (order by s.time_difference))::numeric, 2),
           'max_drift', pg_catalog.max(s.time_difference)
         )
  into v_drift
  from public.sync_records as s
  where s.room_id = p_room_id and s.created_at >= v_since;

  -- Presence classified by the derived rule (needs_resync): synced, out of
  -- sync (drift > 2 s at a heartbeat after the last control) or resyncing
  -- (not reported since the last control). The percentage and healthy are
  -- over the measured members (synced + out of sync): every control makes
  -- all members resync for up to one heartbeat interval, which is not a
  -- health problem.
  select pg_catalog.jsonb_build_object(
           'members', (select pg_catalog.count(*) from public.room_members as m where m.room_id = p_room_id),
           'reporting_members', pg_catalog.count(*),
           'synced_members', pg_catalog.count(*) filter (where c.state = 'synced'),
           'out_of_sync_members', pg_catalog.count(*) filter (where c.state = 'out_of_sync'),
           'resyncing_members', pg_catalog.count(*) filter (where c.state = 'resyncing'),
           'sync_percentage', case when pg_catalog.count(*) filter (where c.state <> 'resyncing') = 0 then null
             else pg_catalog.round(100.0 * pg_catalog.count(*) filter (where c.state = 'synced')
                                   / pg_catalog.count(*) filter (where c.state <> 'resyncing'), 1) end,
           'healthy', case when pg_catalog.count(*) filter (where c.state <> 'resyncing') = 0 then null
             else 100.0 * pg_catalog.count(*) filter (where c.state = 'synced')
                  / pg_catalog.count(*) filter (where c.state <> 'resyncing') >= 80 end
         )
  into v_members
  from watchium_private.member_presence as p
  cross join lateral (
    select case
      when not watchium_private.needs_resync(p.last_heartbeat, p.time_difference,
                                             v_room.playback_updated_at, p.user_id = v_room.host_user_id)
        then 'synced'
      when p.last_heartbeat < v_room.playback_updated_at then 'resyncing'
      else 'out_of_sync'
    end as state
  ) as c
  where p.room_id = p_room_id
    and p.last_heartbeat >= v_since
    and p.sync_level is not null;

  return pg_catalog.jsonb_build_object('room_id', p_room_id, 'window', '1 minute', 'since', v_since)
         || v_drift || v_members;
end;
$$;
comment on function watchium_rpc.get_room_sync_metrics(text) is
  'Body of public.get_room_sync_metrics (same arguments, result and errors; documented there). Security definer: reads watchium_private.member_presence. Callers reach it through public.get_room_sync_metrics, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room_sync_metrics(text) from public;
grant execute on function watchium_rpc.get_room_sync_metrics(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_sync_metrics: the Data API entry point; its body is
-- watchium_rpc.get_room_sync_metrics above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_room_sync_metrics(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room_sync_metrics(p_room_id);
end;
$$;
comment on function public.get_room_sync_metrics(text) is
  'Sync metrics of p_room_id over the last minute: samples, avg / p95 / max drift (sync_states), reporting / synced / out-of-sync / resyncing members (presence, derived rule watchium_private.needs_resync), sync percentage over measured (not resyncing) members, healthy = sync percentage >= 80. Members only.';
revoke all on function public.get_room_sync_metrics(text) from public, anon;
grant execute on function public.get_room_sync_metrics(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- watchium_private.realtime_metrics: client-side realtime metrics (the seed's
-- RealtimeMonitor), one row per report of one member's client.
-- -----------------------------------------------------------------------------
create table watchium_private.realtime_metrics (
  id                 bigint        generated always as identity,
  room_id            text          not null,
  user_id            text          not null,
  active_connections integer       not null,
  total_events       bigint        not null,
  avg_latency_ms     numeric(10,2) not null,
  error_rate         numeric(5,4)  not null,
  recorded_at        timestamptz   not null default now(),
  constraint realtime_metrics_pkey primary key (id),
  constraint realtime_metrics_active_connections_check check (active_connections between 0 and 100000),
  constraint realtime_metrics_total_events_check check (total_events between 0 and 1000000000000),
  constraint realtime_metrics_avg_latency_ms_check check (avg_latency_ms between 0 and 600000),
  constraint realtime_metrics_error_rate_check check (error_rate between 0 and 1)
);
comment on table watchium_private.realtime_metrics is
  'Client-side realtime metrics reported by members (active connections, events, average latency, error rate), kept for realtime_metrics_retention.';
alter table watchium_private.realtime_metrics enable row level security;
revoke all on table watchium_private.realtime_metrics from public;

-- Per-room summaries over a recent window; expiry by age.
create index realtime_metrics_room_id_recorded_at_idx
  on watchium_private.realtime_metrics (room_id, recorded_at desc);
create index realtime_metrics_recorded_at_idx
  on watchium_private.realtime_metrics (recorded_at);

-- -----------------------------------------------------------------------------
-- public.record_realtime_metrics(room_id, active_connections, total_events,
-- avg_latency_ms, error_rate): a member reports its client's metrics.
-- Rate limited (realtime_metrics). Returns the report id.
-- Security definer: writes a private table.
-- -----------------------------------------------------------------------------
create function watchium_rpc.record_realtime_metrics(
  p_room_id text,
  p_active_connections integer,
  p_total_events bigint,
  p_avg_latency_ms numeric,
  p_error_rate numeric
)
returns bigint
language plpgsql
volatile
security definer  -- writes watchium_private.realtime_metrics
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_id      bigint;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if p_active_connections is null or p_active_connections not between 0 and 100000 then
    raise exception 'p_active_connections must be between 0 and 100000 (got %)', coalesce(p_active_connections::text, 'null')
      using errcode = '22023';
  end if;
  if p_total_events is null or p_total_events not between 0 and 1000000000000 then
    raise exception 'p_total_events must be between 0 and 10^12 (got %)', coalesce(p_total_events::text, 'null')
      using errcode = '22023';
  end if;
  if p_avg_latency_ms is null or p_avg_latency_ms = 'NaN'::numeric or p_avg_latency_ms not between 0 and 600000 then
    raise exception 'p_avg_latency_ms must be a finite number of milliseconds from 0 to 600000 (got %)', coalesce(p_avg_latency_ms::text, 'null')
      using errcode = '22023';
  end if;
  if p_error_rate is null or p_error_rate = 'NaN'::numeric or p_error_rate not between 0 and 1 then
    raise exception 'p_error_rate must be a fraction from 0 to 1 (got %)', coalesce(p_error_rate::text, 'null')
      using errcode = '22023', hint = 'The seed''s RealtimeMonitor errorRate: errors / events.';
  end if;
  perform watchium_private.require_sync_room(p_room_id, v_user_id);
  perform watchium_private.enforce_rate_limit(v_user_id, 'realtime_metrics');

  insert into watchium_private.realtime_metrics
    (room_id, user_id, active_connections, total_events, avg_latency_ms, error_rate)
  values (p_room_id, v_user_id, p_active_connections, p_total_events,
          pg_catalog.round(p_avg_latency_ms, 2), pg_catalog.round(p_error_rate, 4))
  returning id into v_id;
  return v_id;
end;
$$;
comment on function watchium_rpc.record_realtime_metrics(text, integer, bigint, numeric, numeric) is
  'Body of public.record_realtime_metrics (same arguments, result and errors; documented there). Security definer: writes watchium_private.realtime_metrics. Callers reach it through public.record_realtime_metrics, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.record_realtime_metrics(text, integer, bigint, numeric, numeric) from public;
grant execute on function watchium_rpc.record_realtime_metrics(text, integer, bigint, numeric, numeric)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.record_realtime_metrics: the Data API entry point; its body is
-- watchium_rpc.record_realtime_metrics above. Security invoker: it runs with
-- the caller's rights and only passes the arguments on; the body checks them
-- and the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.record_realtime_metrics(
  p_room_id text,
  p_active_connections integer,
  p_total_events bigint,
  p_avg_latency_ms numeric,
  p_error_rate numeric
)
returns bigint
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.record_realtime_metrics(p_room_id, p_active_connections,
    p_total_events, p_avg_latency_ms, p_error_rate);
end;
$$;
comment on function public.record_realtime_metrics(text, integer, bigint, numeric, numeric) is
  'A member reports its client''s realtime metrics (the seed''s RealtimeMonitor: active connections, total events, average latency in ms, error rate 0..1) for p_room_id. Rate limited (realtime_metrics). Returns the report id.';
revoke all on function public.record_realtime_metrics(text, integer, bigint, numeric, numeric) from public, anon;
grant execute on function public.record_realtime_metrics(text, integer, bigint, numeric, numeric)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_realtime_metrics_summary(room_id, window_minutes default 5):
-- per-room summary of the latest report of each reporting member in the
-- window: reporters, summed active connections and events, event-weighted
-- average latency and error rate. Members only (trusted callers: any room).
-- Security definer: reads a private table.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_realtime_metrics_summary(p_room_id text, p_window_minutes integer default 5)
returns jsonb
language plpgsql
stable
security definer  -- reads watchium_private.realtime_metrics
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_summary jsonb;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
  end if;
  if p_window_minutes is null or p_window_minutes not between 1 and 1440 then
    raise exception 'p_window_minutes must be between 1 and 1440 (got %)', coalesce(p_window_minutes::text, 'null')
      using errcode = '22023';
  end if;
  perform watchium_private.require_sync_room(p_room_id, v_user_id);

  select pg_catalog.jsonb_build_object(
           'room_id', p_room_id,
           'window_minutes', p_window_minutes,
           'reporters', pg_catalog.count(*),
           'active_connections', coalesce(pg_catalog.sum(l.active_connections), 0),
           'total_events', coalesce(pg_catalog.sum(l.total_events), 0),
           'avg_latency_ms', case when coalesce(pg_catalog.sum(l.total_events), 0) = 0
             then pg_catalog.round(pg_catalog.avg(l.avg_latency_ms), 2)
             else pg_catalog.round(pg_catalog.sum(l.avg_latency_ms * l.total_events) / pg_catalog.sum(l.total_events), 2) end,
           'error_rate', case when coalesce(pg_catalog.sum(l.total_events), 0) = 0
             then pg_catalog.round(pg_catalog.avg(l.error_rate), 4)
             else pg_catalog.round(pg_catalog.sum(l.error_rate * l.total_events) / pg_catalog.sum(l.total_events), 4) end,
           'last_report_at', pg_catalog.max(l.recorded_at)
         )
  into v_summary
  from (
    select distinct on (r.user_id) r.*
    from watchium_private.realtime_metrics as r
    where r.room_id = p_room_id
      and r.recorded_at >= pg_catalog.now() - pg_catalog.make_interval(mins => p_window_minutes)
    order by r.user_id, r.recorded_at desc, r.id desc
  ) as l;
  return v_summary;
end;
$$;
comment on function watchium_rpc.get_realtime_metrics_summary(text, integer) is
  'Body of public.get_realtime_metrics_summary (same arguments, result and errors; documented there). Security definer: reads watchium_private.realtime_metrics. Callers reach it through public.get_realtime_metrics_summary, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_realtime_metrics_summary(text, integer) from public;
grant execute on function watchium_rpc.get_realtime_metrics_summary(text, integer)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_realtime_metrics_summary: the Data API entry point; its body is
-- watchium_rpc.get_realtime_metrics_summary above. Security invoker: it runs
-- with the caller's rights and only passes the arguments on; the body checks
-- them and the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_realtime_metrics_summary(p_room_id text, p_window_minutes integer default 5)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_realtime_metrics_summary(p_room_id, p_window_minutes);
end;
$$;
comment on function public.get_realtime_metrics_summary(text, integer) is
  'Summary of the client realtime metrics of p_room_id over the last p_window_minutes (latest report per member): reporters, active connections, total events, event-weighted average latency and error rate. Members only.';
revoke all on function public.get_realtime_metrics_summary(text, integer) from public, anon;
grant execute on function public.get_realtime_metrics_summary(text, integer) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Column descriptions of watchium_private.realtime_metrics
-- -----------------------------------------------------------------------------
comment on column watchium_private.realtime_metrics.id is 'Identity of the report.';
comment on column watchium_private.realtime_metrics.room_id is 'The room the client watches.';
comment on column watchium_private.realtime_metrics.user_id is 'The reporting member (from the token).';
comment on column watchium_private.realtime_metrics.active_connections is 'Realtime channels the client has open.';
comment on column watchium_private.realtime_metrics.total_events is 'Events the client has received so far.';
comment on column watchium_private.realtime_metrics.avg_latency_ms is 'Average event latency the client measured, in milliseconds.';
comment on column watchium_private.realtime_metrics.error_rate is 'Share of events that failed, 0 to 1.';
comment on column watchium_private.realtime_metrics.recorded_at is 'When the report arrived.';

-- =============================================================================
-- Forgetting a user (account deletion)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.forget_user(user_id): removes what the database holds about a user
-- whose account was deleted. Service role (and the owner) only: the app calls
-- it from its account deletion path (an AFTER DELETE trigger on auth.users
-- that the app creates itself, or a webhook; docs/security.md).
--
--   * memberships: each room is left as leave_room leaves it (room row lock
--     first, in room_id order; member_left with reason account_deleted; the
--     longest-present member becomes host; presence goes with the member);
--   * comments: anonymised. A comment without replies is deleted; one with
--     replies becomes an authorless tombstone (user_id null, username
--     'deleted', message emptied, deleted_at set) that keeps other people's
--     replies in their thread; tombstones left without replies go too, up the
--     thread. Room comments emit comment_deleted;
--   * rate limit counters (subject = the user id) and client realtime metrics.
--
-- Left behind until they expire: the user id in sync history (sync_states,
-- sync_history_retention, including the leave records written here), in
-- room events (watchium_private.room_events and Realtime's messages, their
-- retention), and in event payloads already delivered to clients.
-- Idempotent: forgetting an unknown user changes nothing.
-- Returns {user_id, rooms_left, comments_deleted, comments_tombstoned,
-- rate_limit_counters_deleted, realtime_metrics_deleted}.
-- Security definer: writes every table that holds the user.
-- -----------------------------------------------------------------------------
create function watchium_rpc.forget_user(p_user_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from tables that no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room_id     text;
  v_room        public.rooms;
  v_rooms       integer := 0;
  v_deleted     integer := 0;
  v_tombstoned  integer := 0;
  v_counters    integer := 0;
  v_metrics     integer := 0;
  v_ids         bigint[];
  v_removed     jsonb;
  v_count       integer;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.octet_length(p_user_id) > 400
     or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters'
      using errcode = '22023';
  end if;
  if not watchium_private.caller_is_trusted() then
    raise exception 'forget_user removes another user''s data: service_role only'
      using errcode = '42501',
            hint = 'Call it from the account deletion path of your server (docs/security.md).';
  end if;

  -- Memberships: the leave path of leave_room, room by room in the lock order.
  for v_room_id in
    select m.room_id from public.room_members as m where m.user_id = p_user_id order by m.room_id
  loop
    select * into v_room from public.rooms as r where r.room_id = v_room_id for update;
    if found and watchium_private.remove_member(v_room, p_user_id, 'member_left',
                   pg_catalog.jsonb_build_object('user_id', p_user_id, 'reason', 'account_deleted')) then
      v_rooms := v_rooms + 1;
    end if;
  end loop;

  -- Comments: locked first (a concurrent reply holds its parent for key
  -- share, so it either committed before this lock and is seen below, or
  -- waits and then finds its parent gone). Deleted from the leaves up: a
  -- comment whose replies are all the user's goes in a later round, and so
  -- does a tombstone left without replies (as delete_comment does).
  select pg_catalog.array_agg(l.id order by l.id) into v_ids
  from (
    select c.id from public.comments as c where c.user_id = p_user_id order by c.id for update
  ) as l;
  while v_ids is not null loop
    with d as (
      delete from public.comments as c
      where c.id = any (v_ids)
        and not exists (select from public.comments as r where r.parent_id = c.id)
        and (c.user_id = p_user_id or c.deleted_at is not null)
      returning c.id, c.parent_id, c.room_id
    )
    select pg_catalog.count(*)::integer,
           coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'id', d.id, 'room_id', d.room_id, 'parent_id', d.parent_id)), '[]'::jsonb)
      into v_count, v_removed
    from d;
    exit when v_count = 0;
    v_deleted := v_deleted + v_count;
    perform watchium_private.emit_room_event(x.room_id, 'comment_deleted',
      pg_catalog.jsonb_build_object('id', x.id, 'tombstone', false))
    from pg_catalog.jsonb_to_recordset(v_removed) as x(id bigint, room_id text)
    where x.room_id is not null;
    -- Next round: the parents of what went, when they are the user's or tombstones.
    select pg_catalog.array_agg(l.id order by l.id) into v_ids
    from (
      select c.id from public.comments as c
      where c.id in (select x.parent_id from pg_catalog.jsonb_to_recordset(v_removed) as x(parent_id bigint))
        and (c.user_id = p_user_id or c.deleted_at is not null)
      order by c.id
      for update
    ) as l;
  end loop;

  -- What is left has other people's replies: authorless tombstones.
  with t as (
    update public.comments as c
    set message = '', avatar_url = null, video_timestamp = null,
        deleted_at = coalesce(c.deleted_at, pg_catalog.now()),
        user_id = null, username = 'deleted'
    where c.user_id = p_user_id
    returning c.id, c.room_id
  )
  select pg_catalog.count(*)::integer,
         coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', t.id, 'room_id', t.room_id))
                  filter (where t.room_id is not null), '[]'::jsonb)
    into v_tombstoned, v_removed
  from t;
  perform watchium_private.emit_room_event(x.room_id, 'comment_deleted',
    pg_catalog.jsonb_build_object('id', x.id, 'tombstone', true))
  from pg_catalog.jsonb_to_recordset(v_removed) as x(id bigint, room_id text);

  delete from watchium_private.rate_limit_counters as c where c.subject = p_user_id;
  get diagnostics v_counters = row_count;
  delete from watchium_private.realtime_metrics as m where m.user_id = p_user_id;
  get diagnostics v_metrics = row_count;

  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'rooms_left', v_rooms,
    'comments_deleted', v_deleted,
    'comments_tombstoned', v_tombstoned,
    'rate_limit_counters_deleted', v_counters,
    'realtime_metrics_deleted', v_metrics
  );
end;
$$;
comment on function watchium_rpc.forget_user(text) is
  'Body of public.forget_user (same arguments, result and errors; documented there). Security definer: deletes from tables that no client may write. Callers reach it through public.forget_user, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.forget_user(text) from public;
grant execute on function watchium_rpc.forget_user(text) to service_role;

-- -----------------------------------------------------------------------------
-- public.forget_user: the Data API entry point; its body is
-- watchium_rpc.forget_user above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.forget_user(p_user_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.forget_user(p_user_id);
end;
$$;
comment on function public.forget_user(text) is
  'service_role only: forgets a deleted account. Leaves every room (host handed on), deletes the user''s comments (those with replies become authorless tombstones), removes presence, rate limit counters and realtime metrics. Ids in sync history and room events stay until they expire. Returns a summary.';
revoke all on function public.forget_user(text) from public, anon, authenticated;
grant execute on function public.forget_user(text) to service_role;
