-- =============================================================================
-- 0024 latency-aware heartbeats
--
-- Heartbeats (record_heartbeat, record_heartbeats) may carry
--   * the client's send time (p_client_time: milliseconds since 1970 on the
--     client's clock, or on its estimate of the server's clock) and / or its
--     measured round-trip time (p_rtt_ms);
--   * the episode the member is actually playing (p_episode_number).
-- Each member's smoothed RTT (EWMA, weight 0.85 on the previous value) and
-- last plausible clock offset are kept in watchium_private.member_presence,
-- where the presence lives: soft state, no published row, not indexed (the
-- heartbeat stays a HOT update).
-- While the member plays, its reported position is corrected by the one-way
-- delay (smoothed RTT / 2, else the age of a plausible client timestamp) ×
-- the room's speed before the drift is measured. A client timestamp more than
-- 2 s from the server clock (after the RTT correction) is ignored and the
-- response says so (client_time_ignored).
-- A member playing another episode than the room's gets the level
-- wrong_episode (flag episode_mismatch, reason wrong_episode): no drift is
-- measured or sampled for it.
-- The level boundaries are the room's (0011 room sync options).
-- The presence columns and the level wrong_episode come from 0023.
-- lock_timeout and statement_timeout are set by migrations/env.py.
-- =============================================================================

-- squawk-ignore ban-drop-function
drop function public.record_heartbeat(text, numeric, boolean);
-- squawk-ignore ban-drop-function
drop function watchium_rpc.record_heartbeat(text, numeric, boolean);
-- squawk-ignore ban-drop-function
drop function public.record_heartbeats(text, text[], numeric[], boolean[]);
-- squawk-ignore ban-drop-function
drop function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[]);
-- squawk-ignore ban-drop-function
drop function watchium_private.apply_heartbeats(public.rooms, text[], numeric[], boolean[]);

-- -----------------------------------------------------------------------------
-- public.record_heartbeat(room_id, current_time, is_playing, client_time,
-- rtt_ms, episode_number): the caller's own heartbeat (every 3 s). Returns
-- its sync status against the expected host position: the 0007 result plus
-- reported_time (as corrected), rtt_ms (smoothed), clock_offset_ms,
-- client_time_ignored, episode_mismatch and reason. Rate limited without a
-- write (WD429 sooner than heartbeat_min_interval).
-- Security definer: writes member_presence, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.record_heartbeat(
  p_room_id text,
  p_current_time numeric,
  p_is_playing boolean,
  p_client_time numeric default null,
  p_rtt_ms numeric default null,
  p_episode_number integer default null
)
returns jsonb
language plpgsql
volatile
security definer  -- writes watchium_private.member_presence and sync history
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_time     numeric := watchium_private.require_playback_time(p_current_time, 'p_current_time');
  v_settings record;
  v          record;
begin
  -- Sizes first (22001), before any other work; inline on this hot path.
  if pg_catalog.octet_length(p_room_id) > 40 then
    perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  end if;
  if p_is_playing is null then
    raise exception 'p_is_playing must be true or false, not null' using errcode = '22023';
  end if;
  -- `between` is false for NaN and the infinities.
  if p_client_time is not null and not p_client_time between 0 and 100000000000000 then
    raise exception 'p_client_time must be the send time in milliseconds since 1970 (got %)', p_client_time
      using errcode = '22023', hint = 'Pass the client''s clock when it sent the heartbeat (Date.now()), or null.';
  end if;
  if p_rtt_ms is not null and not p_rtt_ms between 0 and 60000 then
    raise exception 'p_rtt_ms must be a round-trip time from 0 to 60000 ms (got %)', p_rtt_ms
      using errcode = '22023', hint = 'Pass the measured round-trip time in milliseconds, or null.';
  end if;
  if p_episode_number is not null and not p_episode_number between 1 and 100000 then
    raise exception 'p_episode_number must be an episode number from 1 to 100000 (got %)', p_episode_number
      using errcode = '22023', hint = 'Pass the episode the player is playing, or null.';
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
  v_settings := watchium_private.heartbeat_settings();

  -- One statement: the room (expected position, boundaries), the member's
  -- published flag, its previous RTT and the presence update. Nothing is
  -- updated when the caller is not a member, the room does not exist, or the
  -- heartbeat is too soon.
  update watchium_private.member_presence as p
  set last_heartbeat = pg_catalog.now(),
      reported_time = d.corrected,
      is_playing = p_is_playing,
      time_difference = d.drift,
      previous_sync_level = p.sync_level,
      sync_level = d.level,
      rtt_ms = d.rtt,
      clock_offset_ms = case when d.plausible then d.offset_ms else p.clock_offset_ms end,
      reported_episode = p_episode_number,
      -- A wrong episode is not sampled (no drift); '-infinity' keeps the
      -- throttle below (last_sample_at is null only before the first heartbeat).
      last_sample_at = case
        when d.level = 'wrong_episode' then coalesce(p.last_sample_at, '-infinity'::timestamptz)
        when p.sync_level is distinct from d.level
          or p.last_sample_at is null
          or p.last_sample_at <= pg_catalog.now() - v_settings.sample_interval
          then pg_catalog.now()
        else p.last_sample_at
      end
  from (
    select r.is_playing as room_is_playing, r.playback_speed, e.expected, c.corrected, x.drift,
           t.rtt, o.offset_ms, o.offset_ms is not null and abs(o.offset_ms) <= 2000 as plausible,
           -- watchium_private.sync_level with the room's boundaries, inlined.
           case when w.wrong then 'wrong_episode'
                when x.drift <= coalesce(r.sync_drift_perfect, v_settings.drift_perfect) then 'perfect'
                when x.drift <= coalesce(r.sync_drift_good, v_settings.drift_good) then 'good'
                when x.drift <= coalesce(r.sync_drift_minor, v_settings.drift_minor) then 'minor_drift'
                else 'out_of_sync' end as level,
           coalesce(x.drift <= coalesce(r.sync_drift_minor, v_settings.drift_minor), false) as synced,
           w.wrong,
           m.is_synced as published_is_synced
    from public.rooms as r
    join public.room_members as m on m.room_id = r.room_id and m.user_id = v_user_id
    join watchium_private.member_presence as q on q.room_id = r.room_id and q.user_id = v_user_id
    cross join lateral (select watchium_private.room_expected_position(r) as expected) as e
    -- The smoothed RTT with this heartbeat's sample.
    cross join lateral (
      select case when p_rtt_ms is null then q.rtt_ms
                  when q.rtt_ms is null then pg_catalog.round(p_rtt_ms, 1)
                  else pg_catalog.round(0.85 * q.rtt_ms + 0.15 * p_rtt_ms, 1) end as rtt
    ) as t
    -- Server clock minus client clock, NTP-style: the heartbeat left the
    -- client one one-way delay (RTT / 2) ago. Null without a client time.
    cross join lateral (
      select pg_catalog.round(extract(epoch from pg_catalog.now()) * 1000 - p_client_time
                              - coalesce(t.rtt, 0) / 2, 1) as offset_ms
    ) as o
    -- How far the member played since it sent the heartbeat: the one-way
    -- delay (RTT / 2, else the age of a plausible send time) × speed.
    cross join lateral (
      select case
        when not p_is_playing then 0
        when t.rtt is not null then t.rtt / 2000
        when abs(o.offset_ms) <= 2000
          then greatest(extract(epoch from pg_catalog.now()) * 1000 - p_client_time, 0) / 1000
        else 0
      end * r.playback_speed as advance
    ) as a
    cross join lateral (select least(86400::numeric, pg_catalog.round(v_time + a.advance, 2)) as corrected) as c
    cross join lateral (
      select p_episode_number is not null and p_episode_number <> r.episode_number as wrong
    ) as w
    cross join lateral (
      select case when w.wrong then null else pg_catalog.round(abs(c.corrected - e.expected), 2) end as drift
    ) as x
    where r.room_id = p_room_id
  ) as d
  where p.room_id = p_room_id
    and p.user_id = v_user_id
    -- last_sample_at is set by heartbeats only: the first heartbeat right
    -- after joining (last_heartbeat = join time) is never throttled.
    and (p.last_sample_at is null
         or p.last_heartbeat <= pg_catalog.now() - v_settings.min_interval)
  returning d.expected, d.corrected, d.drift, d.level, d.synced, d.wrong, d.rtt, d.offset_ms,
            d.plausible, d.room_is_playing, d.playback_speed, d.published_is_synced,
            p.previous_sync_level, p.last_sample_at = pg_catalog.now() as sampled
  into v;

  if not found then
    perform watchium_private.require_sync_room(p_room_id, v_user_id);  -- P0002, 42501
    raise exception 'heartbeats of one member are accepted at most once per %',
      v_settings.min_interval
      using errcode = 'WD429',
            hint = pg_catalog.format('Send heartbeats every few seconds; retry after %s.',
                                     v_settings.min_interval);
  end if;

  if v.sampled then
    insert into public.sync_states
      (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type)
    values (p_room_id, v_user_id, v.expected, v.corrected, v.drift, v.synced, 'heartbeat');
  end if;
  if v.published_is_synced is distinct from v.synced then
    update public.room_members as rm
    set is_synced = v.synced,
        current_playback_time = v.corrected,
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
        'is_synced', v.synced,
        'time_difference', v.drift,
        'expected_time', v.expected
      ) || case when v.wrong then '{"reason": "wrong_episode"}'::jsonb else '{}'::jsonb end
    );
  end if;

  return pg_catalog.jsonb_build_object(
    'room_id', p_room_id,
    'current_time', v_time,
    'reported_time', v.corrected,
    'expected_time', v.expected,
    'time_difference', v.drift,
    'is_synced', v.synced,
    'sync_level', v.level,
    'is_playing', v.room_is_playing,
    'playback_speed', v.playback_speed,
    'rtt_ms', v.rtt,
    'clock_offset_ms', v.offset_ms,
    'client_time_ignored', p_client_time is not null and not v.plausible,
    'episode_mismatch', v.wrong,
    'reason', case when v.wrong then 'wrong_episode' end,
    'server_time', pg_catalog.now()
  );
end;
$$;
comment on function watchium_rpc.record_heartbeat(text, numeric, boolean, numeric, numeric, integer) is
  'Body of public.record_heartbeat (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_presence and sync history. Callers reach it through public.record_heartbeat, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.record_heartbeat(text, numeric, boolean, numeric, numeric, integer) from public;
grant execute on function watchium_rpc.record_heartbeat(text, numeric, boolean, numeric, numeric, integer)
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
  p_is_playing boolean,
  p_client_time numeric default null,
  p_rtt_ms numeric default null,
  p_episode_number integer default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.record_heartbeat(p_room_id, p_current_time, p_is_playing, p_client_time,
    p_rtt_ms, p_episode_number);
end;
$$;
comment on function public.record_heartbeat(text, numeric, boolean, numeric, numeric, integer) is
  'The caller''s heartbeat in p_room_id, optionally with its send time (p_client_time, ms since 1970), measured RTT (p_rtt_ms) and the episode it plays: stores presence (no published write unless is_synced flips) and returns time_difference, is_synced and sync_level (the room''s boundaries; wrong_episode when p_episode_number is not the room''s) against the expected host position, the position corrected by the one-way delay, the smoothed RTT, the clock offset and whether the send time was ignored (more than 2 s off). WD429 when sooner than heartbeat_min_interval.';
revoke all on function public.record_heartbeat(text, numeric, boolean, numeric, numeric, integer) from public, anon;
grant execute on function public.record_heartbeat(text, numeric, boolean, numeric, numeric, integer) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.record_heartbeats(room_id, user_ids, current_times, is_playing,
-- client_times, rtts_ms, episode_numbers): the batched form for an edge
-- server relaying Realtime presence: arrays of the same length (1 to 1000),
-- element i being one member's heartbeat; the last three are optional (null,
-- or one element per member, null where the member did not report it).
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
  p_is_playing boolean[],
  p_client_times numeric[] default null,
  p_rtts_ms numeric[] default null,
  p_episode_numbers integer[] default null
)
returns table (
  user_id             text,
  outcome             text,
  reported_time       numeric,
  expected_time       numeric,
  time_difference     numeric,
  is_synced           boolean,
  sync_level          text,
  rtt_ms              numeric,
  clock_offset_ms     numeric,
  client_time_ignored boolean,
  episode_mismatch    boolean,
  server_time         timestamptz
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
  if pg_catalog.pg_column_size(p_client_times) > 65536 then
    perform watchium_private.check_size('p_client_times', pg_catalog.pg_column_size(p_client_times), 65536);
  end if;
  if pg_catalog.pg_column_size(p_rtts_ms) > 65536 then
    perform watchium_private.check_size('p_rtts_ms', pg_catalog.pg_column_size(p_rtts_ms), 65536);
  end if;
  if pg_catalog.pg_column_size(p_episode_numbers) > 8192 then
    perform watchium_private.check_size('p_episode_numbers', pg_catalog.pg_column_size(p_episode_numbers), 8192);
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
  if p_client_times is not null and (pg_catalog.cardinality(p_client_times) <> v_n
                                     or pg_catalog.array_ndims(p_client_times) <> 1) then
    raise exception 'p_client_times must be null or have one send time (or null) per user id (% expected, got %)',
      v_n, pg_catalog.cardinality(p_client_times)
      using errcode = '22023';
  end if;
  if p_rtts_ms is not null and (pg_catalog.cardinality(p_rtts_ms) <> v_n
                                or pg_catalog.array_ndims(p_rtts_ms) <> 1) then
    raise exception 'p_rtts_ms must be null or have one round-trip time (or null) per user id (% expected, got %)',
      v_n, pg_catalog.cardinality(p_rtts_ms)
      using errcode = '22023';
  end if;
  if p_episode_numbers is not null and (pg_catalog.cardinality(p_episode_numbers) <> v_n
                                        or pg_catalog.array_ndims(p_episode_numbers) <> 1) then
    raise exception 'p_episode_numbers must be null or have one episode (or null) per user id (% expected, got %)',
      v_n, pg_catalog.cardinality(p_episode_numbers)
      using errcode = '22023';
  end if;

  -- Cheap checks of the whole batch first; the first bad element is looked
  -- up only when one fails, so that the message can name it. 'NaN' passes
  -- `between` in neither direction, but is named anyway.
  if exists (
       select
       from rows from (pg_catalog.unnest(p_user_ids), pg_catalog.unnest(p_current_times),
                       pg_catalog.unnest(p_is_playing), pg_catalog.unnest(p_client_times),
                       pg_catalog.unnest(p_rtts_ms), pg_catalog.unnest(p_episode_numbers))
         as x(user_id, t, playing, ct, rtt, ep)
       where x.user_id is null or pg_catalog.char_length(x.user_id) not between 1 and 100
          or x.t is null or x.t = 'NaN'::numeric or x.t not between 0 and 86400
          or x.playing is null
          or not coalesce(x.ct between 0 and 100000000000000, true)
          or not coalesce(x.rtt between 0 and 60000, true)
          or not coalesce(x.ep between 1 and 100000, true)
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
               when not coalesce(x.ct between 0 and 100000000000000, true)
                 then pg_catalog.format('p_client_times[%s] must be a send time in milliseconds since 1970 or null (got %s)', x.i, x.ct)
               when not coalesce(x.rtt between 0 and 60000, true)
                 then pg_catalog.format('p_rtts_ms[%s] must be a round-trip time from 0 to 60000 ms or null (got %s)', x.i, x.rtt)
               when not coalesce(x.ep between 1 and 100000, true)
                 then pg_catalog.format('p_episode_numbers[%s] must be an episode number from 1 to 100000 or null (got %s)', x.i, x.ep)
               when pg_catalog.count(*) over (partition by x.user_id) > 1
                 then pg_catalog.format('p_user_ids[%s]: %s appears more than once', x.i,
                                        pg_catalog.quote_literal(x.user_id))
             end as problem
      from rows from (pg_catalog.unnest(p_user_ids), pg_catalog.unnest(p_current_times),
                      pg_catalog.unnest(p_is_playing), pg_catalog.unnest(p_client_times),
                      pg_catalog.unnest(p_rtts_ms), pg_catalog.unnest(p_episode_numbers))
        with ordinality as x(user_id, t, playing, ct, rtt, ep, i)
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
         h.is_synced, h.sync_level, h.rtt_ms, h.clock_offset_ms, h.client_time_ignored,
         h.episode_mismatch, pg_catalog.now()
  from watchium_private.apply_heartbeats(v_room, p_user_ids, p_current_times, p_is_playing,
                                         p_client_times, p_rtts_ms, p_episode_numbers) as h;
end;
$$;
comment on function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]) is
  'Body of public.record_heartbeats (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_presence and sync history. Callers reach it through public.record_heartbeats, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]) from public;
grant execute on function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[])
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
  p_is_playing boolean[],
  p_client_times numeric[] default null,
  p_rtts_ms numeric[] default null,
  p_episode_numbers integer[] default null
)
returns table (
  user_id             text,
  outcome             text,
  reported_time       numeric,
  expected_time       numeric,
  time_difference     numeric,
  is_synced           boolean,
  sync_level          text,
  rtt_ms              numeric,
  clock_offset_ms     numeric,
  client_time_ignored boolean,
  episode_mismatch    boolean,
  server_time         timestamptz
)
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return query select * from watchium_rpc.record_heartbeats(p_room_id, p_user_ids, p_current_times,
    p_is_playing, p_client_times, p_rtts_ms, p_episode_numbers);
end;
$$;
comment on function public.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]) is
  'service_role only: many members'' heartbeats of one room in one call (element i of p_user_ids, p_current_times, p_is_playing and, optionally, p_client_times, p_rtts_ms, p_episode_numbers; 1 to 1000). One row per member: outcome (ok, throttled, not_member), sync status (as record_heartbeat: latency-corrected, the room''s boundaries, wrong_episode), smoothed RTT, clock offset. Rate limited per member by heartbeat_min_interval (too early: throttled, nothing written).';
revoke all on function public.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]) from public, anon, authenticated;
grant execute on function public.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]) to service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_sync_state(room_id): where the host is now, and how the
-- caller and the room stand. Members only (trusted callers: any room; their
-- "me" is null). Read only.
-- Security definer: reads member_presence, which clients cannot.
-- -----------------------------------------------------------------------------
create or replace function watchium_rpc.get_room_sync_state(p_room_id text)
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
  v_options  record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
  end if;
  v_room := watchium_private.require_sync_room(p_room_id, v_user_id);
  v_expected := watchium_private.room_expected_position(v_room);
  v_options := watchium_private.room_sync_options(v_room);

  if v_user_id is not null then
    select pg_catalog.jsonb_build_object(
             'user_id', p.user_id,
             'estimated_time', x.estimated,
             'time_difference', pg_catalog.round(abs(x.estimated - v_expected), 2),
             'is_synced', not l.wrong and abs(x.estimated - v_expected) <= v_options.drift_minor,
             'sync_level', case
               when l.wrong then 'wrong_episode'
               when pg_catalog.round(abs(x.estimated - v_expected), 2) <= v_options.drift_perfect then 'perfect'
               when pg_catalog.round(abs(x.estimated - v_expected), 2) <= v_options.drift_good then 'good'
               when pg_catalog.round(abs(x.estimated - v_expected), 2) <= v_options.drift_minor then 'minor_drift'
               else 'out_of_sync' end,
             'needs_resync', watchium_private.needs_resync(
               p.last_heartbeat, p.time_difference, v_room.playback_updated_at,
               p.user_id = v_room.host_user_id, v_options.drift_minor),
             'last_heartbeat', p.last_heartbeat,
             'rtt_ms', p.rtt_ms,
             'clock_offset_ms', p.clock_offset_ms,
             'episode_mismatch', l.wrong
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
    cross join lateral (
      select coalesce(p.reported_episode <> v_room.episode_number, false) as wrong
    ) as l
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
             m.user_id = v_room.host_user_id, v_options.drift_minor) as needs_resync
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
    'stats', v_stats,
    'sync_options', watchium_private.room_sync_options_json(v_room)
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
create or replace function public.get_room_sync_state(p_room_id text)
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
  'The Live button: the expected host position now, playing state, speed, episode, host, the caller''s own sync status (its position extrapolated from its last heartbeat, level by the room''s boundaries, needs_resync, smoothed RTT, clock offset, episode_mismatch), the room''s sync options and the room''s members / synced members / members needing a resync / sync percentage (derived: watchium_private.needs_resync). Members only.';
revoke all on function public.get_room_sync_state(text) from public, anon;
grant execute on function public.get_room_sync_state(text) to authenticated, service_role;

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
create or replace function watchium_rpc.get_room_sync_metrics(p_room_id text)
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
  v_latency jsonb;
  v_minor   numeric;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
  end if;
  v_room := watchium_private.require_sync_room(p_room_id, v_user_id);
  v_minor := (watchium_private.room_sync_options(v_room)).drift_minor;

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
                                             v_room.playback_updated_at, p.user_id = v_room.host_user_id,
                                             v_minor)
        then 'synced'
      when p.last_heartbeat < v_room.playback_updated_at then 'resyncing'
      else 'out_of_sync'
    end as state
  ) as c
  where p.room_id = p_room_id
    and p.last_heartbeat >= v_since
    and p.sync_level is not null;

  -- Latency per reporting member: smoothed RTT, clock offset, wrong episode.
  select pg_catalog.jsonb_build_object(
           'member_latency', coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'user_id', p.user_id,
             'rtt_ms', p.rtt_ms,
             'clock_offset_ms', p.clock_offset_ms,
             'episode_mismatch', coalesce(p.reported_episode <> v_room.episode_number, false)
           ) order by p.user_id), '[]'::jsonb),
           'avg_rtt_ms', pg_catalog.round(pg_catalog.avg(p.rtt_ms), 1),
           'max_rtt_ms', pg_catalog.max(p.rtt_ms),
           'wrong_episode_members', pg_catalog.count(*) filter (
             where p.reported_episode <> v_room.episode_number)
         )
  into v_latency
  from watchium_private.member_presence as p
  where p.room_id = p_room_id
    and p.last_heartbeat >= v_since
    and p.sync_level is not null;

  return pg_catalog.jsonb_build_object('room_id', p_room_id, 'window', '1 minute', 'since', v_since)
         || v_drift || v_members || v_latency;
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
create or replace function public.get_room_sync_metrics(p_room_id text)
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
  'Sync metrics of p_room_id over the last minute: samples, avg / p95 / max drift (sync_states), reporting / synced / out-of-sync / resyncing members (presence, derived rule watchium_private.needs_resync), sync percentage over measured (not resyncing) members, healthy = sync percentage >= 80; per reporting member its smoothed RTT, clock offset and wrong episode (member_latency), avg / max RTT, wrong_episode_members. Members only.';
revoke all on function public.get_room_sync_metrics(text) from public, anon;
grant execute on function public.get_room_sync_metrics(text) to authenticated, service_role;
