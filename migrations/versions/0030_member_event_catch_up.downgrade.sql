-- =============================================================================
-- 0030 (downgrade): get_room_sync_state as 0024 defined it.
-- =============================================================================
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

drop function public.get_room_events(text, text, bigint, text, integer);
drop function watchium_rpc.get_room_events(text, text, bigint, text, integer);
