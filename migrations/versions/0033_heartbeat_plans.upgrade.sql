-- =============================================================================
-- 0033 heartbeats planned to compute each step once
--
-- The heartbeat's statement derives a member's numbers step by step (smoothed
-- RTT, clock offset, advance, corrected position, drift, level), each step a
-- LATERAL subquery. The planner pulls such subqueries up and copies a step's
-- expression into every place that names it, so the drift was computed once
-- per level comparison, and with it the whole chain below it; the single
-- heartbeat also called room_expected_position (PL/pgSQL) 19 times. A subquery
-- with OFFSET 0 is not pulled up: each step now runs once per row.
--   record_heartbeat    the steps fenced; the expected position and the
--                       settings inlined into its one statement; one
--                       validation guard on the valid path.
--   record_heartbeats   the queue's advance checked only in a room with a queue;
--                       the size and optional-array checks behind one guard each.
--   apply_heartbeats    the steps fenced, the drift boundaries and the clock
--                       inlined; the presence row read for its RTT
--                       is updated by its address (one index lookup per
--                       member instead of two).
-- Results, errors and rules are unchanged (the tests that compare the single
-- and batched forms pass as before). Functions only: no table is locked.
-- lock_timeout and statement_timeout are set by migrations/env.py.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_rpc.record_heartbeat: 0029's body, each step fenced.
-- -----------------------------------------------------------------------------
create or replace function watchium_rpc.record_heartbeat(
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
  v_apply    boolean := true;
  v_room     public.rooms;
  v_due      boolean := false;
begin
  -- One guard on the valid path; the checks inside name the argument, sizes
  -- first (22001). (Each expression of a PL/pgSQL function is set up again in
  -- every transaction: on this path fewer is faster.)
  if pg_catalog.octet_length(p_room_id) > 40 or p_is_playing is null
     or not coalesce(p_client_time between 0 and 100000000000000, true)
     or not coalesce(p_rtt_ms between 0 and 60000, true)
     or not coalesce(p_episode_number between 1 and 100000, true) then
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

  <<beat>>
  loop
    -- One statement: the settings, the room (expected position, boundaries),
    -- the member's published flag, its previous RTT and the presence update.
    -- Each step below is a subquery with OFFSET 0, evaluated once: pulled up,
    -- a step's expression is copied into every reference to it (the drift
    -- into each level comparison, and the expected position, a PL/pgSQL
    -- call, into all of them: 19 calls per heartbeat). Nothing is
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
            or p.last_sample_at <= pg_catalog.now() - d.sample_interval
            then pg_catalog.now()
          else p.last_sample_at
        end
    from (
      select st.min_interval, st.sample_interval, r.is_playing as room_is_playing, r.playback_speed, e.expected, c.corrected, x.drift,
             t.rtt, o.offset_ms, o.offset_ms is not null and abs(o.offset_ms) <= 2000 as plausible,
             -- watchium_private.sync_level with the room's boundaries, inlined.
             case when w.wrong then 'wrong_episode'
                  when x.drift <= coalesce(r.sync_drift_perfect, st.drift_perfect) then 'perfect'
                  when x.drift <= coalesce(r.sync_drift_good, st.drift_good) then 'good'
                  when x.drift <= coalesce(r.sync_drift_minor, st.drift_minor) then 'minor_drift'
                  else 'out_of_sync' end as level,
             coalesce(x.drift <= coalesce(r.sync_drift_minor, st.drift_minor), false) as synced,
             w.wrong,
             m.is_synced as published_is_synced,
             -- Something of the room fell due since the last call on it: a
             -- deadline (group wait, ready check) or the end of the queue item.
             coalesce(r.sync_deadline <= pg_catalog.now(), false)
               or coalesce(e.expected > r.queue_advance_after, false) as due
      from public.rooms as r
      join public.room_members as m on m.room_id = r.room_id and m.user_id = v_user_id
      join watchium_private.member_presence as q on q.room_id = r.room_id and q.user_id = v_user_id
      -- watchium_private.heartbeat_settings(), inlined.
      cross join (
        select pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'heartbeat_min_interval') as min_interval,
               pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'heartbeat_sample_interval') as sample_interval,
               coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_perfect'), 0.5) as drift_perfect,
               coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_good'), 1) as drift_good,
               coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_minor'), 2) as drift_minor
        from watchium_private.settings as s
        where s.key in ('heartbeat_min_interval', 'heartbeat_sample_interval',
                        'sync_drift_perfect', 'sync_drift_good', 'sync_drift_minor')
      ) as st
      -- watchium_private.room_expected_position(r), inlined.
      cross join lateral (
        select case when r.is_playing
                    then pg_catalog.round(least(86400::numeric, r.current_playback_time
                           + extract(epoch from greatest(pg_catalog.now() - r.playback_updated_at, interval '0'))
                             * r.playback_speed), 2)
                    else r.current_playback_time end as expected
        offset 0
      ) as e
      -- The smoothed RTT with this heartbeat's sample.
      cross join lateral (
        select case when p_rtt_ms is null then q.rtt_ms
                    when q.rtt_ms is null then pg_catalog.round(p_rtt_ms, 1)
                    else pg_catalog.round(0.85 * q.rtt_ms + 0.15 * p_rtt_ms, 1) end as rtt
        offset 0
      ) as t
      -- Server clock minus client clock, NTP-style: the heartbeat left the
      -- client one one-way delay (RTT / 2) ago. Null without a client time.
      cross join lateral (
        select pg_catalog.round(extract(epoch from pg_catalog.now()) * 1000 - p_client_time
                                - coalesce(t.rtt, 0) / 2, 1) as offset_ms
        offset 0
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
      cross join lateral (
        select least(86400::numeric, pg_catalog.round(v_time + a.advance, 2)) as corrected offset 0
      ) as c
      cross join lateral (
        select p_episode_number is not null and p_episode_number <> r.episode_number as wrong
      ) as w
      cross join lateral (
        select case when w.wrong then null else pg_catalog.round(abs(c.corrected - e.expected), 2) end as drift
        offset 0
      ) as x
      where r.room_id = p_room_id
    ) as d
    where p.room_id = p_room_id
      and p.user_id = v_user_id
      -- last_sample_at is set by heartbeats only: the first heartbeat right
      -- after joining (last_heartbeat = join time) is never throttled.
      and (p.last_sample_at is null
           or p.last_heartbeat <= pg_catalog.now() - d.min_interval)
      -- A due room is settled first (below), then the heartbeat is measured
      -- against the room as it is after that.
      and not (v_apply and d.due)
    returning d.expected, d.corrected, d.drift, d.level, d.synced, d.wrong, d.rtt, d.offset_ms,
              d.plausible, d.room_is_playing, d.playback_speed, d.published_is_synced,
              p.previous_sync_level, p.last_sample_at = pg_catalog.now() as sampled, true as written
    into v;
    exit beat when found;
    perform watchium_private.require_sync_room(p_room_id, v_user_id);  -- P0002, 42501
    -- A member's heartbeat is the next call on the room: it applies what fell
    -- due (never waiting: a room row someone holds is left to that caller),
    -- then is measured once more, against the room as it is now.
    exit beat when not v_apply;
    -- Its sync deadlines (apply_sync_deadlines), then its queue's automatic
    -- advance (auto_advance_queue), each taking the row SKIP LOCKED. Written
    -- out here, not as a helper of this revision: a heartbeat that began
    -- before this revision's downgrade could still call a helper it drops.
    select * into v_room from public.rooms as r where r.room_id = p_room_id;
    if v_room.sync_deadline <= pg_catalog.clock_timestamp() then
      perform watchium_private.apply_sync_deadlines(p_room_id, true);
      v_due := true;
      select * into v_room from public.rooms as r where r.room_id = p_room_id;
    end if;
    if v_room.queue_advance_after is not null and watchium_private.queue_advance_due(v_room) then
      perform watchium_private.auto_advance_queue(p_room_id);
      v_due := true;
    end if;
    exit beat when not v_due;
    v_apply := false;
  end loop;

  if v.written is null then
    v_settings := watchium_private.heartbeat_settings();
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

-- -----------------------------------------------------------------------------
-- watchium_rpc.record_heartbeats: 0029's body; the queue check only with a queue.
-- -----------------------------------------------------------------------------
create or replace function watchium_rpc.record_heartbeats(
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
  -- Sizes first (22001), before any other work: one guard on the valid path
  -- (each expression of a PL/pgSQL function is set up again in every
  -- transaction), the checks inside name the argument.
  if pg_catalog.octet_length(p_room_id) > 40
     or pg_catalog.pg_column_size(p_user_ids) > 409600
     or pg_catalog.pg_column_size(p_current_times) > 65536
     or pg_catalog.pg_column_size(p_is_playing) > 2048
     or pg_catalog.pg_column_size(p_client_times) > 65536
     or pg_catalog.pg_column_size(p_rtts_ms) > 65536
     or pg_catalog.pg_column_size(p_episode_numbers) > 8192 then
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
  if p_client_times is not null or p_rtts_ms is not null or p_episode_numbers is not null then
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
  -- The batch is the next call on the room: what fell due is applied first
  -- (never waiting), and the batch is measured against the room after it.
  -- (As record_heartbeat: sync deadlines, then the queue's advance, SKIP LOCKED.)
  if v_room.sync_deadline <= pg_catalog.clock_timestamp() then
    perform watchium_private.apply_sync_deadlines(p_room_id, true);
    select * into v_room from public.rooms as r where r.room_id = p_room_id;
  end if;
  if v_room.queue_advance_after is not null and watchium_private.queue_advance_due(v_room) then
    perform watchium_private.auto_advance_queue(p_room_id);
    select * into v_room from public.rooms as r where r.room_id = p_room_id;
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

-- -----------------------------------------------------------------------------
-- watchium_private.apply_heartbeats: 0023's body, each step fenced.
-- -----------------------------------------------------------------------------
create or replace function watchium_private.apply_heartbeats(
  p_room public.rooms,
  p_user_ids text[],
  p_times numeric[],
  p_playing boolean[],
  p_client_times numeric[],
  p_rtts numeric[],
  p_episodes integer[]
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
  episode_mismatch    boolean
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
  v_expected numeric := watchium_private.room_expected_position(p_room);
  v_settings record := watchium_private.heartbeat_settings();
begin
  return query
  -- Each step of beat is a subquery with OFFSET 0, evaluated once per member:
  -- pulled up, a step's expression is copied into every reference to it.
  with beat as materialized (
    select b.user_id, q.ctid as presence_ctid, b.is_playing, b.episode, c.corrected as reported, t.rtt, o.offset_ms,
           o.offset_ms is not null and abs(o.offset_ms) <= 2000 as plausible, w.wrong, x.drift,
           -- watchium_private.sync_level with the room's boundaries, inlined.
           case when w.wrong then 'wrong_episode'
                when x.drift <= coalesce(p_room.sync_drift_perfect, v_settings.drift_perfect) then 'perfect'
                when x.drift <= coalesce(p_room.sync_drift_good, v_settings.drift_good) then 'good'
                when x.drift <= coalesce(p_room.sync_drift_minor, v_settings.drift_minor) then 'minor_drift'
                else 'out_of_sync' end as level,
           coalesce(x.drift <= coalesce(p_room.sync_drift_minor, v_settings.drift_minor), false) as synced
    from rows from (pg_catalog.unnest(p_user_ids), pg_catalog.unnest(p_times), pg_catalog.unnest(p_playing),
                    pg_catalog.unnest(p_client_times), pg_catalog.unnest(p_rtts), pg_catalog.unnest(p_episodes))
      as a(user_id, t, is_playing, client_time, rtt, episode)
    cross join lateral (select a.user_id, a.t, a.is_playing, a.episode) as b
    left join watchium_private.member_presence as q
      on q.room_id = p_room.room_id and q.user_id = b.user_id
    cross join lateral (
      select case when a.rtt is null then q.rtt_ms
                  when q.rtt_ms is null then pg_catalog.round(a.rtt, 1)
                  else pg_catalog.round(0.85 * q.rtt_ms + 0.15 * a.rtt, 1) end as rtt
      offset 0
    ) as t
    cross join lateral (
      select pg_catalog.round(extract(epoch from pg_catalog.now()) * 1000 - a.client_time - coalesce(t.rtt, 0) / 2, 1) as offset_ms
      offset 0
    ) as o
    cross join lateral (
      select case
        when not b.is_playing then 0
        when t.rtt is not null then t.rtt / 2000
        when abs(o.offset_ms) <= 2000 then greatest(extract(epoch from pg_catalog.now()) * 1000 - a.client_time, 0) / 1000
        else 0
      end * p_room.playback_speed as advance
    ) as v
    cross join lateral (
      select least(86400::numeric, pg_catalog.round(b.t + v.advance, 2)) as corrected offset 0
    ) as c
    cross join lateral (
      select b.episode is not null and b.episode <> p_room.episode_number as wrong
    ) as w
    cross join lateral (
      select case when w.wrong then null else pg_catalog.round(abs(c.corrected - v_expected), 2) end as drift
      offset 0
    ) as x
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
        rtt_ms = b.rtt,
        clock_offset_ms = case when b.plausible then b.offset_ms else p.clock_offset_ms end,
        reported_episode = b.episode,
        last_sample_at = case
          when b.level = 'wrong_episode' then coalesce(p.last_sample_at, '-infinity'::timestamptz)
          when p.sync_level is distinct from b.level
            or p.last_sample_at is null
            or p.last_sample_at <= pg_catalog.now() - v_settings.sample_interval
            then pg_catalog.now()
          else p.last_sample_at
        end
    from beat as b
    -- The row beat read (its previous RTT) is updated by its address, not
    -- looked up again. Should a concurrent transaction update the same
    -- member's presence meanwhile, the address no longer matches the row's
    -- latest version and this member's heartbeat is not written: outcome
    -- 'throttled', as for any heartbeat that comes too soon after another.
    where p.ctid = b.presence_ctid
      and p.room_id = p_room.room_id
      and p.user_id = b.user_id
      and (p.last_sample_at is null
           or p.last_heartbeat <= pg_catalog.now() - v_settings.min_interval)
    returning p.user_id, p.reported_time, p.time_difference, p.sync_level, p.previous_sync_level,
              b.synced, b.wrong, p.last_sample_at = pg_catalog.now() as sampled
  ),
  history as (
    insert into public.sync_states
      (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type)
    select p_room.room_id, u.user_id, v_expected, u.reported_time, u.time_difference,
           u.synced, 'heartbeat'
    from presence as u
    where u.sampled
  ),
  flipped as (
    select rm.user_id, u.reported_time, u.synced
    from public.room_members as rm
    join presence as u on u.user_id = rm.user_id
    where rm.room_id = p_room.room_id
      and rm.is_synced is distinct from u.synced
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
               'is_synced', u.synced,
               'time_difference', u.time_difference,
               'expected_time', v_expected
             ) || case when u.wrong then '{"reason": "wrong_episode"}'::jsonb else '{}'::jsonb end
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
         b.reported, v_expected, b.drift, b.synced, b.level, b.rtt, b.offset_ms,
         b.offset_ms is not null and not b.plausible, b.wrong
  from beat as b
  left join presence as u on u.user_id = b.user_id
  -- events is a SELECT: it runs only when read.
  where (select pg_catalog.count(*) from events) >= 0
  order by b.user_id;
end;
$$;
comment on function watchium_private.apply_heartbeats(public.rooms, text[], numeric[], boolean[], numeric[], numeric[], integer[]) is
  'Batched heartbeat write path of one room, one statement: presence (HOT; smoothed RTT, clock offset, reported episode), sampled history, published snapshot only on is_synced flips, sync_status events only on level changes; the same rules as record_heartbeat (latency correction, room boundaries, wrong episode); outcome ok, throttled or not_member per member. Arguments validated by the caller. Never touches public.rooms. Internal.';
