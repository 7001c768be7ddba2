-- =============================================================================
-- 0030 gapless resync for members
--
-- A reconnecting client takes a snapshot (get_room_sync_state) and follows
-- the room's events from where that snapshot ends, without a gap or a
-- duplicate, by itself: until now only trusted listeners could read the log.
--   get_room_sync_state  adds events_position {xact_id, event_id, snapshot}:
--                        the transaction snapshot its state was read in
--                        (the function is STABLE: one snapshot for all of
--                        it), and waiting (room_wait_state).
--   get_room_events      members read their room's events after a position,
--                        in (xact_id, event_id) order, only from transactions
--                        that ended (an event of a transaction still running
--                        is held back, as for listeners), and, given the
--                        snapshot, without the events the snapshot already
--                        contained. Members read events from the minute
--                        before they joined onwards, nothing older.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.get_room_events(room_id, after_xact_id, after_event_id, snapshot
-- default null, limit default 200): a member's catch-up of its room's events.
-- Returns {events: [{event_id, room_id, event, payload, created_at,
-- xact_id}], position: {xact_id, event_id, snapshot} (pass it back as is),
-- more, held, expired}:
--   events    after the position, in (xact_id, event_id) order, at most
--             p_limit, only of transactions that ended (below this
--             snapshot's xmin): a later call never returns an event that
--             sorts before one already returned;
--   snapshot  (from get_room_sync_state's events_position) events of
--             transactions visible in it are left out: the state read in
--             that snapshot already contains them. Pass it on every call;
--   held      events of transactions still running wait for a later call;
--   expired   trimming deleted events after the position: lost to this
--             reader, take a new snapshot.
-- A member reads the events of its room from the minute before it joined
-- onwards (a transaction that began before the join and ended after it is
-- not missed), nothing older; P0002 / 42501 for a room it cannot see or is
-- not a member of. Trusted callers (service_role): any room, any event.
-- Security definer: the log is private.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room_events(
  p_room_id text,
  p_after_xact_id text,
  p_after_event_id bigint,
  p_snapshot text default null,
  p_limit integer default 200
)
returns jsonb
language plpgsql
stable
security definer  -- reads the private event log for a member of the room
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_after   xid8;
  v_snap    pg_catalog.pg_snapshot;
  v_since   timestamptz := '-infinity'::timestamptz;
  v_xmin    xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
  v_events  jsonb;
  v_count   integer;
  v_last    record;
  v_expired jsonb;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_after_xact_id', pg_catalog.octet_length(p_after_xact_id), 20);
  perform watchium_private.check_size('p_snapshot', pg_catalog.octet_length(p_snapshot), 65536);
  if p_limit is null or p_limit not between 1 and 1000 then
    raise exception 'p_limit must be from 1 to 1000 (got %)', coalesce(p_limit::text, 'null')
      using errcode = '22023';
  end if;
  if p_after_xact_id is null or p_after_event_id is null or p_after_event_id < 0 then
    raise exception 'p_after_xact_id and p_after_event_id must be a position in the room''s events (got %, %)',
      coalesce(p_after_xact_id, 'null'), coalesce(p_after_event_id::text, 'null')
      using errcode = '22023',
            hint = 'Start from get_room_sync_state''s events_position, then pass back the position each call returns.';
  end if;
  -- xid8's input function does not validate on PostgreSQL 15 (garbage reads
  -- as 0, '-1' as 2^64 - 1): checked here, digits only, within 64 bits.
  if p_after_xact_id !~ '^[0-9]{1,20}$'
     or p_after_xact_id::numeric > 18446744073709551615 then
    raise exception 'p_after_xact_id must be a transaction id as events_position returned it (got %)',
      pg_catalog.quote_literal(p_after_xact_id)
      using errcode = '22023';
  end if;
  v_after := p_after_xact_id::xid8;
  if p_snapshot is not null then
    begin
      v_snap := p_snapshot::pg_catalog.pg_snapshot;
    exception when invalid_text_representation or numeric_value_out_of_range then
      raise exception 'p_snapshot must be a snapshot as events_position returned it (got %)',
        pg_catalog.quote_literal(pg_catalog.left(p_snapshot, 100))
        using errcode = '22023';
    end;
  end if;
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
    select m.joined_at - interval '1 minute' into v_since
    from public.room_members as m
    where m.room_id = p_room_id and m.user_id = v_user_id;
    if not found then
      perform watchium_private.require_sync_room(p_room_id, v_user_id);  -- P0002, 42501
      raise exception 'p_room_id: you are not a member of room %', p_room_id
        using errcode = '42501', hint = 'Join the room first.';
    end if;
  end if;

  select pg_catalog.jsonb_build_object(
           'xact_id', x.xact_id::text, 'event_id', x.event_id, 'expired_at', x.expired_at
         )
    into v_expired
    from watchium_private.room_events_expired as x
   where x.room_id = p_room_id
     and (x.xact_id, x.event_id) > (v_after, p_after_event_id);

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
         and (r.xact_id, r.event_id) > (v_after, p_after_event_id)
         and r.created_at >= v_since
         and (v_snap is null or not pg_catalog.pg_visible_in_snapshot(r.xact_id, v_snap))
       order by r.xact_id, r.event_id
       limit p_limit + 1
    ) as e;

  if v_count > p_limit then
    v_events := v_events - p_limit;  -- drop the extra one read to know there is more
  end if;
  select (v_events -> -1 ->> 'xact_id') as xact_id, (v_events -> -1 ->> 'event_id')::bigint as event_id
    into v_last;

  return pg_catalog.jsonb_build_object(
    'events', v_events,
    'position', pg_catalog.jsonb_build_object(
      'xact_id', coalesce(v_last.xact_id, v_after::text),
      'event_id', coalesce(v_last.event_id, p_after_event_id),
      'snapshot', p_snapshot),
    'more', v_count > p_limit,
    'held', exists (
      select from watchium_private.room_events as r
       where r.room_id = p_room_id and r.xact_id >= v_xmin
         and (v_snap is null or not pg_catalog.pg_visible_in_snapshot(r.xact_id, v_snap))
    ),
    'expired', v_expired
  );
end;
$$;
comment on function watchium_rpc.get_room_events(text, text, bigint, text, integer) is
  'Body of public.get_room_events (same arguments, result and errors; documented there). Security definer: reads the private event log. Callers reach it through public.get_room_events, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room_events(text, text, bigint, text, integer) from public;
grant execute on function watchium_rpc.get_room_events(text, text, bigint, text, integer)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_events: the Data API entry point; its body is
-- watchium_rpc.get_room_events above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_room_events(
  p_room_id text,
  p_after_xact_id text,
  p_after_event_id bigint,
  p_snapshot text default null,
  p_limit integer default 200
)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room_events(p_room_id, p_after_xact_id, p_after_event_id, p_snapshot, p_limit);
end;
$$;
comment on function public.get_room_events(text, text, bigint, text, integer) is
  'A member''s catch-up of its room''s events after a position (from get_room_sync_state''s events_position, then the position each call returns), in (xact_id, event_id) order, only of ended transactions, without the events the given snapshot contains: a snapshot plus these events misses nothing and repeats nothing. Events from the minute before the member joined onwards. {events, position, more, held, expired}. 22023 for a bad position, snapshot or limit; P0002/42501 for a room the caller cannot see or is not a member of.';
revoke all on function public.get_room_events(text, text, bigint, text, integer) from public, anon;
grant execute on function public.get_room_events(text, text, bigint, text, integer) to authenticated, service_role;

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
    'sync_options', watchium_private.room_sync_options_json(v_room),
    -- Waiting (group wait, ready check) or a scheduled start (0021).
    'waiting', watchium_private.room_wait_state(v_room),
    -- Where this snapshot ends in the room's event log: get_room_events from
    -- here returns exactly the events this state does not include.
    -- {xact_id: the snapshot's xmin, event_id: 0, snapshot}: every event of a
    -- transaction below xmin is in this state; of the others, exactly those
    -- of transactions visible in the snapshot (pg_visible_in_snapshot).
    'events_position', pg_catalog.jsonb_build_object(
      'xact_id', pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text,
      'event_id', 0,
      'snapshot', pg_catalog.pg_current_snapshot()::text)
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
  'The Live button: the expected host position now, playing state, speed, episode, host, the caller''s own sync status (its position extrapolated from its last heartbeat, level by the room''s boundaries, needs_resync, smoothed RTT, clock offset, episode_mismatch), the room''s sync options, its waiting state (waiting: group wait, ready check or scheduled start), events_position (resume get_room_events there: no gap, no duplicate) and the room''s members / synced members / members needing a resync / sync percentage (derived: watchium_private.needs_resync). Members only.';
