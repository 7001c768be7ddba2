-- =============================================================================
-- 0035 set_ready says how the ready check it came for ended
--
-- An answer that found no ready check running was either refused (WD409) or,
-- when the check had run as the call began (its deadline applied by this very
-- call, or a cancel that committed while the call waited for the room lock),
-- answered normally, the code and the docs calling every such end an expiry:
-- a member could not tell a check the host cancelled (the room stays paused)
-- from one that expired (playback starts).
--
-- The cancellation is recorded already: cancel_ready_check and the host's
-- pause emit ready_check state cancelled, as the deadline emits expired, a
-- completing answer completed and force_resume or the host's play forced, in
-- the room's event log (under the room lock, so in event_id order). set_ready
-- now reads, when no check runs after it took the room lock, the state of the
-- room's last ready_check event among its last 1000 logged events, and
-- answers normally with it when it is an end (completed, expired, forced,
-- cancelled); WD409 only when no check ended there (none ran recently).
-- Its reply gets two keys:
--   ready_check_state  running (the answer counted, the check runs on),
--                      completed, expired, forced or cancelled;
--   answer_counted     true when the answer was recorded (running, or
--                      completed by this very answer), false when the check
--                      had ended and the answer changed nothing.
-- Functions only: no table is locked.
-- lock_timeout and statement_timeout are set by migrations/env.py.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_rpc.set_ready: 0021's body; the ended check's state read from the
-- log instead of inferred from the room's state before the lock.
-- -----------------------------------------------------------------------------
create or replace function watchium_rpc.set_ready(p_room_id text, p_ready boolean)
returns jsonb
language plpgsql
volatile
security definer  -- writes watchium_private.member_playback and public.rooms
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_ended   text;
  v_at      timestamptz;
  v_ready   record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_ready is null then
    raise exception 'p_ready must be true or false, not null' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'playback_status');
  v_room := watchium_private.lock_member_room(p_room_id, v_user_id);
  if v_room.waiting_reason is distinct from 'ready_check' then
    -- No check runs (any more): how did the last one end? Its end was logged
    -- under the room lock this call now holds (the expiry perhaps by this very
    -- call); read among the room's last 1000 events (bounded).
    select e.payload ->> 'state' into v_ended
      from (
        select l.event_id, l.event, l.payload
          from watchium_private.room_events as l
         where l.room_id = p_room_id
         order by l.event_id desc
         limit 1000
      ) as e
     where e.event = 'ready_check'
     order by e.event_id desc
     limit 1;
    if v_ended in ('completed', 'expired', 'forced', 'cancelled') then
      -- The answer comes too late and changes nothing (no error, so that an
      -- expiry this call applied is kept); the reply says how the check ended.
      return watchium_private.member_wait_reply(v_room, v_user_id)
             || pg_catalog.jsonb_build_object('ready_check_state', v_ended, 'answer_counted', false);
    end if;
    raise exception 'no ready check is running in room %', p_room_id
      using errcode = 'WD409', hint = 'The host starts one with start_ready_check.';
  end if;
  v_at := pg_catalog.clock_timestamp();
  insert into watchium_private.member_playback as b (room_id, user_id, ready_at, updated_at)
  values (p_room_id, v_user_id, case when p_ready then v_at end, v_at)
  on conflict (room_id, user_id) do update
    set ready_at = excluded.ready_at, updated_at = excluded.updated_at;

  v_ready := watchium_private.ready_count(v_room);
  perform watchium_private.emit_room_event(
    p_room_id, 'ready_check',
    pg_catalog.jsonb_build_object(
      'state', 'updated', 'user_id', v_user_id, 'ready', p_ready,
      'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
      'deadline', v_room.sync_deadline));
  if v_ready.ready_members >= v_ready.needed then
    perform watchium_private.emit_room_event(
      p_room_id, 'ready_check',
      pg_catalog.jsonb_build_object(
        'state', 'completed', 'user_id', v_user_id, 'ready', p_ready,
        'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
        'deadline', v_room.sync_deadline));
    v_room := watchium_private.end_wait(v_room, 'ready', v_user_id, null);
    return watchium_private.member_wait_reply(v_room, v_user_id)
           || pg_catalog.jsonb_build_object('ready_check_state', 'completed', 'answer_counted', true);
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id)
         || pg_catalog.jsonb_build_object('ready_check_state', 'running', 'answer_counted', true);
end;
$$;

comment on function public.set_ready(text, boolean) is
  'A member answers the running ready check (p_ready true or false); the answer that reaches the needed count starts playback at a scheduled start. Returns the member''s status, the room''s waiting state, ready_check_state (running, or how the check ended: completed, expired, forced, cancelled) and answer_counted (false: the check had ended, the answer changed nothing). WD409 when no ready check runs and none ended among the room''s last 1000 logged events.';
