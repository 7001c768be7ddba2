-- =============================================================================
-- 0024 latency-aware heartbeats (downgrade): removes exactly what the upgrade
-- added and restores the 0007 definitions (0023's downgrade then maps the
-- level wrong_episode back and drops the presence columns).
-- =============================================================================
drop function public.record_heartbeat(text, numeric, boolean, numeric, numeric, integer);
drop function watchium_rpc.record_heartbeat(text, numeric, boolean, numeric, numeric, integer);
drop function public.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]);
drop function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]);

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
  'The Live button: the expected host position now, playing state, speed, episode, host, the caller''s own sync status (its position extrapolated from its last heartbeat, needs_resync) and the room''s members / synced members / members needing a resync / sync percentage (derived: watchium_private.needs_resync). Members only.';
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
  'Sync metrics of p_room_id over the last minute: samples, avg / p95 / max drift (sync_states), reporting / synced / out-of-sync / resyncing members (presence, derived rule watchium_private.needs_resync), sync percentage over measured (not resyncing) members, healthy = sync percentage >= 80. Members only.';
revoke all on function public.get_room_sync_metrics(text) from public, anon;
grant execute on function public.get_room_sync_metrics(text) to authenticated, service_role;


