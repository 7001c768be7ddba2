-- =============================================================================
-- 0035 (downgrade): set_ready as 0021 defined it.
-- =============================================================================
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
  v_before  text;
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
  select r.waiting_reason into v_before from public.rooms as r where r.room_id = p_room_id;
  v_room := watchium_private.lock_member_room(p_room_id, v_user_id);
  if v_room.waiting_reason is distinct from 'ready_check' and v_before = 'ready_check' then
    -- The check ended at its deadline, applied by this very call: the answer
    -- comes too late and changes nothing (no error, so that the expiry this
    -- call applied is kept).
    return watchium_private.member_wait_reply(v_room, v_user_id);
  end if;
  if v_room.waiting_reason is distinct from 'ready_check' then
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
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id);
end;
$$;

comment on function public.set_ready(text, boolean) is
  'A member answers the running ready check (p_ready true or false); the answer that reaches the needed count starts playback at a scheduled start. WD409 when no ready check runs. Returns the member''s status and the room''s waiting state.';
