-- =============================================================================
-- 0023 presence latency columns
--
-- watchium_private.member_presence gets the smoothed RTT, the clock offset and
-- the reported episode of each member, and the level wrong_episode, for the
-- latency-aware heartbeats of 0024, and the helpers those heartbeats call
-- (heartbeat_settings, needs_resync with the room's drift boundary,
-- apply_heartbeats). Nothing writes the columns or calls the helpers before 0024.
-- The new columns are nullable without a default (no rewrite); the new checks
-- are added NOT VALID and validated in this transaction (every existing row
-- passes: the columns are null).
--
-- A revision of its own: 0024's downgrade puts back the heartbeat functions
-- that do not read these columns and commits before this one drops them, so
-- a heartbeat that started on 0024's functions never finds its columns or
-- helpers gone.
-- =============================================================================

alter table watchium_private.member_presence
  add column rtt_ms numeric(8,1),
  add column clock_offset_ms numeric(6,1),
  add column reported_episode integer;
-- Widens the sync level check (adds wrong_episode) in the same statement: the old check is
-- replaced by a looser one, so no guarantee is lost.
alter table watchium_private.member_presence
  add constraint member_presence_rtt_ms_check check (rtt_ms between 0 and 60000) not valid,
  add constraint member_presence_clock_offset_ms_check
    check (clock_offset_ms between -2000 and 2000) not valid,
  add constraint member_presence_reported_episode_check
    check (reported_episode between 1 and 100000) not valid,
  -- squawk-ignore ban-drop-constraint
  drop constraint member_presence_sync_level_check,
  add constraint member_presence_sync_level_check check (
    sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync', 'wrong_episode')
    and previous_sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync', 'wrong_episode')
  ) not valid;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_rtt_ms_check;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_clock_offset_ms_check;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_reported_episode_check;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_sync_level_check;
comment on column watchium_private.member_presence.rtt_ms is
  'Smoothed round-trip time of the member''s client, ms: EWMA of the reported samples (0.85 × previous + 0.15 × sample). Null until one is reported.';
comment on column watchium_private.member_presence.clock_offset_ms is
  'Server clock minus the client''s, ms, at the last heartbeat with a plausible send time (server time − client time − RTT/2). Null until one is reported.';
comment on column watchium_private.member_presence.reported_episode is
  'The episode the member said it plays at its last heartbeat (null: not said). Differs from rooms.episode_number: wrong episode, not drift.';

-- =============================================================================
-- The heartbeat helpers 0024's functions call (here, so that 0024's downgrade
-- never drops a helper that a heartbeat started on 0024's functions still
-- calls: 0023's downgrade commits later).
-- =============================================================================
-- -----------------------------------------------------------------------------
-- watchium_private.heartbeat_settings(): what a heartbeat reads from the
-- settings, in one statement: heartbeat_min_interval,
-- heartbeat_sample_interval and the default drift boundaries (0011).
-- -----------------------------------------------------------------------------
create function watchium_private.heartbeat_settings(
  out min_interval interval,
  out sample_interval interval,
  out drift_perfect numeric,
  out drift_good numeric,
  out drift_minor numeric
)
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  select pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'heartbeat_min_interval'),
         pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'heartbeat_sample_interval'),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_perfect'), 0.5),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_good'), 1),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_minor'), 2)
  into min_interval, sample_interval, drift_perfect, drift_good, drift_minor
  from watchium_private.settings as s
  where s.key in ('heartbeat_min_interval', 'heartbeat_sample_interval',
                  'sync_drift_perfect', 'sync_drift_good', 'sync_drift_minor');
end;
$$;
comment on function watchium_private.heartbeat_settings() is
  'The settings heartbeat_min_interval, heartbeat_sample_interval and the default drift boundaries (sync_drift_perfect, sync_drift_good, sync_drift_minor), read in one statement. Internal.';
revoke all on function watchium_private.heartbeat_settings() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.needs_resync(last_heartbeat, time_difference,
-- playback_updated_at, is_host, synced_max): the derived rule of 0007 with
-- the room's synced boundary (drift_minor) instead of 2 s. A member whose
-- last heartbeat was the wrong episode has no drift (null): it needs a
-- resync like one that never reported.
-- -----------------------------------------------------------------------------
create function watchium_private.needs_resync(
  p_last_heartbeat timestamptz,
  p_time_difference numeric,
  p_playback_updated_at timestamptz,
  p_is_host boolean,
  p_synced_max numeric
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
    else p_time_difference > p_synced_max
  end
$$;
comment on function watchium_private.needs_resync(timestamptz, numeric, timestamptz, boolean, numeric) is
  'needs_resync with the room''s synced boundary: true when the last heartbeat predates playback_updated_at or no drift was measured (never reported, wrong episode; unless the host), or the last drift was > p_synced_max. Internal.';
revoke all on function watchium_private.needs_resync(timestamptz, numeric, timestamptz, boolean, numeric) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.apply_heartbeats(room, user_ids, times, playing,
-- client_times, rtts, episodes): the batched write path, one statement, the
-- same rules as record_heartbeat (a test sends the same heartbeats through
-- both). The optional arrays are null or one element per member (null: not
-- reported).
-- -----------------------------------------------------------------------------
create function watchium_private.apply_heartbeats(
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
  v_perfect  numeric;
  v_good     numeric;
  v_minor    numeric;
  v_now_ms   numeric := extract(epoch from pg_catalog.now()) * 1000;
begin
  v_perfect := coalesce(p_room.sync_drift_perfect, v_settings.drift_perfect);
  v_good := coalesce(p_room.sync_drift_good, v_settings.drift_good);
  v_minor := coalesce(p_room.sync_drift_minor, v_settings.drift_minor);
  return query
  with beat as materialized (
    select b.user_id, b.is_playing, b.episode, c.corrected as reported, t.rtt, o.offset_ms,
           o.offset_ms is not null and abs(o.offset_ms) <= 2000 as plausible, w.wrong, x.drift,
           -- watchium_private.sync_level with the room's boundaries, inlined.
           case when w.wrong then 'wrong_episode'
                when x.drift <= v_perfect then 'perfect'
                when x.drift <= v_good then 'good'
                when x.drift <= v_minor then 'minor_drift'
                else 'out_of_sync' end as level,
           coalesce(x.drift <= v_minor, false) as synced
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
    ) as t
    cross join lateral (
      select pg_catalog.round(v_now_ms - a.client_time - coalesce(t.rtt, 0) / 2, 1) as offset_ms
    ) as o
    cross join lateral (
      select case
        when not b.is_playing then 0
        when t.rtt is not null then t.rtt / 2000
        when abs(o.offset_ms) <= 2000 then greatest(v_now_ms - a.client_time, 0) / 1000
        else 0
      end * p_room.playback_speed as advance
    ) as v
    cross join lateral (select least(86400::numeric, pg_catalog.round(b.t + v.advance, 2)) as corrected) as c
    cross join lateral (
      select b.episode is not null and b.episode <> p_room.episode_number as wrong
    ) as w
    cross join lateral (
      select case when w.wrong then null else pg_catalog.round(abs(c.corrected - v_expected), 2) end as drift
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
    where p.room_id = p_room.room_id
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
revoke all on function watchium_private.apply_heartbeats(public.rooms, text[], numeric[], boolean[], numeric[], numeric[], integer[]) from public;

