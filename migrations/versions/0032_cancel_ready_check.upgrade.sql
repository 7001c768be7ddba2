-- =============================================================================
-- 0032 cancel_ready_check
--
-- public.cancel_ready_check(room_id): whoever may start a ready check (the
-- control_playback permission: the host, co-hosts by default) ends the
-- running one without starting playback. The room stays paused at the
-- position it froze at; 'ready_check' (state cancelled) and 'sync_wait'
-- (state cancelled, cause host) are emitted, as for a host's pause during the
-- check (0025, scheduled starts). No playback event: playback does not change.
-- When no ready check runs (none was started, it completed or expired, or
-- the room waits for buffering members) nothing changes and the answer says
-- cancelled false: not an error, so that a cancel racing the check's end has
-- one outcome and the caller reads which from the room's state it returns.
-- Functions only: no table is locked.
-- lock_timeout and statement_timeout are set by migrations/env.py.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_rpc.cancel_ready_check: the body. Rate limited (sync_control),
-- the room lock first, due deadlines applied (an expired check starts
-- playback as it would at any call; cancelled false then).
-- -----------------------------------------------------------------------------
create function watchium_rpc.cancel_ready_check(p_room_id text)
returns jsonb
language plpgsql
volatile
security definer  -- writes public.rooms
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id   text;
  v_room      public.rooms;
  v_checked   public.rooms;
  v_ready     record;
  v_cancelled boolean := false;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  perform watchium_private.enforce_rate_limit(v_user_id, 'sync_control');
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  -- Whoever may start a ready check (the host; co-hosts by default).
  perform watchium_private.require_room_permission(p_room_id, v_user_id, 'control_playback');
  v_room := watchium_private.settle_room(v_room, v_user_id);
  if v_room.waiting_reason = 'ready_check' then
    v_checked := v_room;
    v_ready := watchium_private.ready_count(v_room);
    -- Paused already (begin_wait): only the waiting state goes.
    update public.rooms as r
    set waiting_since = null,
        waiting_reason = null,
        sync_deadline = null,
        ready_check_min_ready = null,
        -- Refreshed at most once a minute: the update stays HOT (last_activity is
        -- indexed), as a host control's does.
        last_activity = case
          when r.last_activity < pg_catalog.now() - interval '1 minute' then pg_catalog.now()
          else r.last_activity
        end
    where r.room_id = p_room_id
    returning * into v_room;
    perform watchium_private.emit_room_event(
      p_room_id, 'ready_check',
      pg_catalog.jsonb_build_object(
        'state', 'cancelled', 'user_id', v_user_id, 'ready', null,
        'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
        'deadline', v_checked.sync_deadline));
    perform watchium_private.emit_sync_wait(
      v_room, 'cancelled', 'host', v_user_id, null, v_checked.waiting_since, v_checked.waiting_reason);
    v_cancelled := true;
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id)
         || pg_catalog.jsonb_build_object('cancelled', v_cancelled);
end;
$$;
comment on function watchium_rpc.cancel_ready_check(text) is
  'Body of public.cancel_ready_check (same arguments, result and errors; documented there). Security definer: writes public.rooms. Callers reach it through public.cancel_ready_check, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.cancel_ready_check(text) from public;
grant execute on function watchium_rpc.cancel_ready_check(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.cancel_ready_check: the Data API entry point; its body is
-- watchium_rpc.cancel_ready_check above.
-- -----------------------------------------------------------------------------
create function public.cancel_ready_check(p_room_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.cancel_ready_check(p_room_id);
end;
$$;
comment on function public.cancel_ready_check(text) is
  'Permission control_playback (the host; co-hosts by default): ends the running ready check without starting playback; the room stays paused (events ready_check and sync_wait, state cancelled). cancelled is false, and nothing changes, when no ready check runs (none started, or it already completed or expired). Returns the room''s waiting state.';
revoke all on function public.cancel_ready_check(text) from public, anon;
grant execute on function public.cancel_ready_check(text) to authenticated, service_role;
