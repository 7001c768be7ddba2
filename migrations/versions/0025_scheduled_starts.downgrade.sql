-- =============================================================================
-- 0025 scheduled starts (downgrade): apply_host_control as 0016 defined it.
-- =============================================================================
create or replace function watchium_private.apply_host_control(
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
  -- rooms.host_user_id names the member flagged is_host (trigger
  -- _200_sync_room_host keeps them together, under this same row lock).
  if v_room.host_user_id is distinct from v_user_id then
    -- Not the host (or no such room): a missing room, or a private one the
    -- caller is not a member of, answers P0002 as everywhere else. The host is
    -- a member, so the check is skipped for it.
    perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
    -- Anyone else needs control_playback (default: co_host). The host holds
    -- every permission (no minimum role ranks above host), so the host's
    -- control reads nothing more than before.
    if not watchium_private.has_room_permission(p_room_id, v_user_id, 'control_playback') then
      raise exception 'only the host of room % controls playback (and members the room''s control_playback permission allows)', p_room_id
        using errcode = '42501', hint = 'Ask the host, or become host when the host leaves.';
    end if;
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
      last_activity = case
        when r.last_activity < pg_catalog.now() - interval '1 minute' then pg_catalog.now()
        else r.last_activity
      end
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
    'host_user_id', v_room.host_user_id,
    'controlled_by', v_user_id
  );
  perform watchium_private.emit_room_event(p_room_id, 'playback', v_state);
  return v_state || pg_catalog.jsonb_build_object('sync', v_sync);
end;
$$;
comment on function watchium_private.apply_host_control(text, text, text, boolean, numeric, numeric) is
  'Shared body of the playback controls: rate limit, room lock, host check (anyone else needs the control_playback permission: co-hosts by default), new playback reference (last_activity refreshed when older than a minute), bulk sync, one playback event naming controlled_by. Internal.';

create or replace function watchium_rpc.report_playback_status(
  p_room_id text,
  p_status text,
  p_position numeric
)
returns jsonb
language plpgsql
volatile
security definer  -- writes watchium_private.member_playback and public.rooms
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id   text;
  v_time      numeric;
  v_room      public.rooms;
  v_prev      watchium_private.member_playback;
  v_joined_at timestamptz;
  v_at        timestamptz;
  v_waited    boolean;
  v_late      boolean;
  v_deadline  timestamptz;
  v_timeout   numeric;
  v_block     record;
  o           record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_status', pg_catalog.octet_length(p_status), 40);
  v_user_id := watchium_private.require_user_id();
  if p_status is null or p_status not in ('buffering', 'ready') then
    raise exception 'p_status must be ''buffering'' or ''ready'' (got %)',
      coalesce(pg_catalog.quote_literal(p_status), 'null')
      using errcode = '22023';
  end if;
  v_time := watchium_private.require_playback_time(p_position, 'p_position');
  perform watchium_private.enforce_rate_limit(v_user_id, 'playback_status');

  v_room := watchium_private.lock_member_room(p_room_id, v_user_id);
  v_at := pg_catalog.clock_timestamp();
  select * into v_prev from watchium_private.member_playback as b
  where b.room_id = p_room_id and b.user_id = v_user_id;

  if p_status = 'ready' then
    insert into watchium_private.member_playback as b
      (room_id, user_id, status, reported_time, status_since, loaded_at, updated_at)
    values (p_room_id, v_user_id, 'ready', v_time, v_at, v_at, v_at)
    on conflict (room_id, user_id) do update
      set status = 'ready',
          reported_time = excluded.reported_time,
          status_since = case when b.status = 'ready' then b.status_since else excluded.status_since end,
          wait_deadline = null,
          skipped_at = null,
          late_joiner = false,
          loaded_at = excluded.loaded_at,
          updated_at = excluded.updated_at;
    if v_prev.wait_deadline is not null and v_room.waiting_reason = 'buffering' then
      v_block := watchium_private.room_blockers(p_room_id);
      if v_block.blocking_members = 0 then
        v_room := watchium_private.end_wait(v_room, 'reports', v_user_id, null);
      else
        update public.rooms as r set sync_deadline = v_block.next_deadline
        where r.room_id = p_room_id returning * into v_room;
        perform watchium_private.emit_sync_wait(
          v_room, 'waiting', 'ready', v_user_id, null, v_room.waiting_since, v_room.waiting_reason);
      end if;
    end if;
    return watchium_private.member_wait_reply(v_room, v_user_id);
  end if;

  -- Buffering.
  if v_prev.status = 'buffering' then
    -- Already buffering: the position is news, the deadline is not.
    update watchium_private.member_playback as b
    set reported_time = v_time, updated_at = v_at
    where b.room_id = p_room_id and b.user_id = v_user_id;
    return watchium_private.member_wait_reply(v_room, v_user_id);
  end if;

  select m.joined_at into v_joined_at from public.room_members as m
  where m.room_id = p_room_id and m.user_id = v_user_id;
  v_late := v_prev.loaded_at is null
            and (v_room.is_playing or v_room.waiting_reason is not distinct from 'buffering')
            and v_joined_at > coalesce(v_room.waiting_since, v_room.playback_updated_at);
  v_waited := not coalesce(v_prev.wait_opt_out, false)
              and not v_late
              and ((v_room.is_playing and v_room.waiting_reason is null)
                   or v_room.waiting_reason is not distinct from 'buffering');
  if v_waited then
    -- The room's timeouts (room options, else the settings): first load 60 s,
    -- re-buffer 10 s by default; 0 means the room never waits for it.
    o := watchium_private.room_sync_options(v_room);
    v_timeout := case when v_prev.loaded_at is null then o.first_load_timeout
                      else o.rebuffer_timeout end;
    if v_timeout > 0 then
      v_deadline := v_at + pg_catalog.make_interval(secs => v_timeout::double precision);
    else
      v_waited := false;
    end if;
  end if;

  insert into watchium_private.member_playback as b
    (room_id, user_id, status, reported_time, status_since, wait_deadline, late_joiner, updated_at)
  values (p_room_id, v_user_id, 'buffering', v_time, v_at, v_deadline, v_late, v_at)
  on conflict (room_id, user_id) do update
    set status = 'buffering',
        reported_time = excluded.reported_time,
        status_since = excluded.status_since,
        wait_deadline = excluded.wait_deadline,
        skipped_at = null,
        late_joiner = excluded.late_joiner,
        updated_at = excluded.updated_at;

  if v_waited then
    if v_room.waiting_reason is null then
      v_room := watchium_private.begin_wait(v_room, 'buffering', v_deadline, null);
    else
      update public.rooms as r set sync_deadline = least(r.sync_deadline, v_deadline)
      where r.room_id = p_room_id returning * into v_room;
    end if;
    perform watchium_private.emit_sync_wait(
      v_room, 'waiting', 'buffering', v_user_id, null, v_room.waiting_since, v_room.waiting_reason);
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id);
end;
$$;
comment on function watchium_rpc.report_playback_status(text, text, numeric) is
  'Body of public.report_playback_status (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_playback and public.rooms. Callers reach it through public.report_playback_status, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
