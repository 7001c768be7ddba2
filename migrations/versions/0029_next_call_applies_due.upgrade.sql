-- =============================================================================
-- 0029 the next call applies what fell due
--
-- A room's deadlines (a buffering member's excuse, a ready check's end: 0021)
-- and the automatic advance of its queue (0013) were applied by host
-- controls, queue calls, the waiting functions and maintain(). Heartbeats
-- are the calls a room receives most: now they apply them too.
--   record_heartbeat    the room columns it already reads decide (one
--                       comparison each when nothing is due); a due room is
--                       settled first, then the heartbeat is measured against
--                       it. Never waits: the room row is taken SKIP LOCKED.
--   record_heartbeats   the same, once per batch.
--   advance_room_queue  a playing room starts the next item at a scheduled
--                       start (scheduled_start_at, 0025: the episode
--                       countdown), like a host's play at 0.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_rpc.record_heartbeat: 0024's body; a due room is settled first.
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
  v_written  boolean;
  v_room     public.rooms;
  v_due      boolean := false;
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

  <<beat>>
  loop
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
             m.is_synced as published_is_synced,
             -- Something of the room fell due since the last call on it: a
             -- deadline (group wait, ready check) or the end of the queue item.
             coalesce(r.sync_deadline <= pg_catalog.now(), false)
               or coalesce(e.expected > r.queue_advance_after, false) as due
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
      -- A due room is settled first (below), then the heartbeat is measured
      -- against the room as it is after that.
      and not (v_apply and d.due)
    returning d.expected, d.corrected, d.drift, d.level, d.synced, d.wrong, d.rtt, d.offset_ms,
              d.plausible, d.room_is_playing, d.playback_speed, d.published_is_synced,
              p.previous_sync_level, p.last_sample_at = pg_catalog.now() as sampled
    into v;
    v_written := found;
    exit beat when v_written;
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
    if watchium_private.queue_advance_due(v_room) then
      perform watchium_private.auto_advance_queue(p_room_id);
      v_due := true;
    end if;
    exit beat when not v_due;
    v_apply := false;
  end loop;

  if not v_written then
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
-- watchium_rpc.record_heartbeats: 0024's body; a due room is settled first.
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
  -- The batch is the next call on the room: what fell due is applied first
  -- (never waiting), and the batch is measured against the room after it.
  -- (As record_heartbeat: sync deadlines, then the queue's advance, SKIP LOCKED.)
  if v_room.sync_deadline <= pg_catalog.clock_timestamp() then
    perform watchium_private.apply_sync_deadlines(p_room_id, true);
    select * into v_room from public.rooms as r where r.room_id = p_room_id;
  end if;
  if watchium_private.queue_advance_due(v_room) then
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
-- watchium_private.advance_room_queue: 0013's body; a scheduled start.
-- -----------------------------------------------------------------------------
create or replace function watchium_private.advance_room_queue(
  p_room public.rooms,
  p_user_id text,
  p_reason text
)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room     public.rooms := p_room;
  v_next     public.room_queue;
  v_at       timestamptz := pg_catalog.clock_timestamp();
  v_grace    numeric := extract(epoch from coalesce(
                 watchium_private.setting_interval('queue_advance_grace'), interval '2 seconds'));
  v_playback jsonb;
  v_result   jsonb;
begin
  delete from public.room_queue as q where q.room_id = v_room.room_id and q.position = 0;
  update public.room_queue as q set position = q.position - 1 where q.room_id = v_room.room_id;
  select * into v_next from public.room_queue as q
  where q.room_id = v_room.room_id and q.position = 0;

  if v_next.item_id is not null then
    update public.rooms as r
    set anime_id = v_next.anime_id,
        anime_title = v_next.anime_title,
        episode_number = v_next.episode_number,
        video_url = v_next.video_url,
        source_id = null,
        current_playback_time = 0,
        -- A playing room starts the next episode at a scheduled start (the
        -- room's episode countdown, at least its minimum lead): every client
        -- has loaded the new video before the position moves.
        playback_updated_at = case
          when v_room.is_playing then watchium_private.scheduled_start_at(v_room, v_at, true)
          else v_at
        end,
        queue_item_id = v_next.item_id,
        -- The expected position stops at 86400: an item that long ends when
        -- the position reaches the cap.
        queue_advance_after = least(v_next.duration + v_grace, 86399.99),
        last_activity = pg_catalog.now()
    where r.room_id = v_room.room_id
    returning * into v_room;
    perform watchium_private.ensure_anchor(v_room.anime_id, v_room.episode_number);
  else
    update public.rooms as r
    set current_playback_time = watchium_private.room_expected_position(r, v_at),
        is_playing = false,
        playback_updated_at = v_at,
        queue_item_id = null,
        queue_advance_after = null,
        last_activity = pg_catalog.now()
    where r.room_id = v_room.room_id
    returning * into v_room;
  end if;

  v_result := pg_catalog.jsonb_build_object(
    'from_item_id', p_room.queue_item_id,
    'item', watchium_private.queue_item_json(v_next),
    'reason', p_reason,
    'advanced_by', p_user_id
  );
  perform watchium_private.emit_room_event(v_room.room_id, 'queue_advanced', v_result);
  v_playback := pg_catalog.jsonb_build_object(
    'room_id', v_room.room_id,
    'action', case when v_next.item_id is not null then 'episode' else 'pause' end,
    'is_playing', v_room.is_playing,
    'current_time', v_room.current_playback_time,
    'playback_speed', v_room.playback_speed,
    'playback_updated_at', v_room.playback_updated_at,
    'episode_number', v_room.episode_number,
    'host_user_id', v_room.host_user_id
  );
  perform watchium_private.emit_room_event(v_room.room_id, 'playback', v_playback);
  return v_result || pg_catalog.jsonb_build_object('playback', v_playback);
end;
$$;
comment on function watchium_private.advance_room_queue(public.rooms, text, text) is
  'Advances a locked room''s queue: deletes the current item, moves the others up, plays the next from 0 (new playback reference, at a scheduled start when playing, its anime, episode and URL, its anchor) or pauses when the queue ran out; emits queue_advanced and playback. Internal.';
