-- =============================================================================
-- 0025 scheduled starts in the host controls
--
-- apply_host_control (the definition of 0016, co-host control) now:
--   * applies the room's due sync deadlines first (one comparison of
--     rooms.sync_deadline when none is due);
--   * starts (play, or a seek while playing) at a scheduled start: the
--     reference playback_updated_at is in the future (scheduled_start_at: the
--     room's minimum start lead, an episode's countdown for a play at 0);
--   * ends a wait on play (blockers skipped, as force_resume) or pause (the
--     wait is cancelled: a later ready report does not start a paused room);
--     seek and speed keep the room waiting.
-- =============================================================================
-- -----------------------------------------------------------------------------
-- watchium_private.apply_host_control: scheduled starts and the waiting state.
--   * due deadlines of the room are applied first (settle_room), under the
--     room lock the control takes anyway;
--   * a start (play, or a seek while playing) takes effect at a scheduled
--     start (scheduled_start_at): playback_updated_at in the future, the
--     expected position before it is the start position; a play at 0 is an
--     episode start (at least the room's episode countdown);
--   * play ends a wait as a force resume does (blockers skipped, sync_wait
--     resumed, cause host; a ready check: 'forced'); pause ends it without
--     resuming (sync_wait cancelled; a ready check: 'cancelled'); seek and
--     speed keep the room waiting, paused at the new position.
-- -----------------------------------------------------------------------------
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
  v_waiting  public.rooms;
  v_old_speed numeric;
  v_position numeric;
  v_at       timestamptz;
  v_starts   timestamptz;
  v_playing  boolean;
  v_ends_wait boolean;
  v_skipped  text[];
  v_ready    record;
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
  -- Deadlines that passed since the last call on the room: one comparison
  -- when there is none.
  if v_room.sync_deadline <= pg_catalog.clock_timestamp() then
    v_room := watchium_private.settle_room(v_room, v_user_id);
  end if;

  -- The new reference instant is when the change happens, after the room lock
  -- was granted, not when the transaction began: a control that waited behind
  -- another one must not date its position back (playing clients would
  -- overshoot by the wait times the speed).
  v_at := pg_catalog.clock_timestamp();
  v_position := coalesce(p_time, watchium_private.room_expected_position(v_room, v_at));
  v_old_speed := v_room.playback_speed;  -- members were playing at the old speed
  v_playing := coalesce(p_is_playing, v_room.is_playing);
  v_ends_wait := v_room.waiting_reason is not null and p_action in ('play', 'pause');
  -- A start (play, or a seek while playing) takes effect at a scheduled
  -- start; a play at 0 starts the episode (its countdown applies).
  v_starts := case
    when v_playing and p_action in ('play', 'seek')
      then watchium_private.scheduled_start_at(v_room, v_at, p_action = 'play' and v_position = 0)
    else v_at
  end;

  if v_ends_wait then
    v_waiting := v_room;
    with skipped as (
      update watchium_private.member_playback as b
      set wait_deadline = null, skipped_at = v_at, updated_at = v_at
      where b.room_id = p_room_id and b.wait_deadline is not null
      returning b.user_id
    )
    select pg_catalog.array_agg(s.user_id order by s.user_id) into v_skipped from skipped as s;
    if v_room.waiting_reason = 'ready_check' then
      v_ready := watchium_private.ready_count(v_room);
    end if;
  end if;

  update public.rooms as r
  set is_playing = v_playing,
      current_playback_time = v_position,
      playback_speed = coalesce(p_speed, r.playback_speed),
      playback_updated_at = v_starts,
      waiting_since = case when v_ends_wait then null else r.waiting_since end,
      waiting_reason = case when v_ends_wait then null else r.waiting_reason end,
      sync_deadline = case when v_ends_wait then null else r.sync_deadline end,
      ready_check_min_ready = case when v_ends_wait then null else r.ready_check_min_ready end,
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
  if v_ends_wait then
    if v_waiting.waiting_reason = 'ready_check' then
      perform watchium_private.emit_room_event(
        p_room_id, 'ready_check',
        pg_catalog.jsonb_build_object(
          'state', case when p_action = 'play' then 'forced' else 'cancelled' end,
          'user_id', v_user_id, 'ready', null,
          'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
          'deadline', v_waiting.sync_deadline));
    end if;
    perform watchium_private.emit_sync_wait(
      v_room, case when p_action = 'play' then 'resumed' else 'cancelled' end, 'host', v_user_id,
      v_skipped, v_waiting.waiting_since, v_waiting.waiting_reason);
  end if;
  return v_state || pg_catalog.jsonb_build_object('sync', v_sync);
end;
$$;
comment on function watchium_private.apply_host_control(text, text, text, boolean, numeric, numeric) is
  'Shared body of the host controls: rate limit, room lock, host or control_playback check, due sync deadlines applied, new playback reference (a start — play, or seek while playing — at a scheduled start; last_activity refreshed when older than a minute), play or pause ending a wait, bulk sync, one playback event. Internal.';

-- -----------------------------------------------------------------------------
-- report_playback_status: a late joiner is one that joined after the start was
-- decided; with scheduled starts the reference lies ahead of the decision.
-- -----------------------------------------------------------------------------
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
            -- Joined after the start was decided: the reference of a scheduled
            -- start lies ahead of that decision by at most the room's longest lead.
            and v_joined_at > coalesce(
              v_room.waiting_since,
              v_room.playback_updated_at
                - (watchium_private.scheduled_start_at(v_room, v_room.playback_updated_at, true)
                   - v_room.playback_updated_at));
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
