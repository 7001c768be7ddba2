-- =============================================================================
-- 0016 co-host control
--
-- A co-host (any member the room's control_playback permission allows;
-- default minimum role co_host) plays, pauses, seeks and changes the speed
-- exactly as the host does: apply_host_control moves the room's one playback
-- reference under the same room row lock, so there is still one clock and
-- one authority over it at a time (the lock serializes host and co-hosts).
-- The host's own controls take the same path as before (the permission is
-- read only for a caller who is not the host). The playback event names who
-- controlled (controlled_by); host_user_id stays the host.
-- Ported onto apply_host_control as revision 0012 (hot paths) defines it.
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
