-- =============================================================================
-- 0021 group wait and ready check (downgrade): removes exactly what the
-- upgrade added and restores maintain() of 0013 (episode queue).
-- =============================================================================
-- Calls that began before the revisions above were downgraded may still run
-- their bodies, which call the helpers dropped here: they end first.
select watchium_private.await_older_transactions();

-- Lock order: the busy table first, then the one dropped here. Dropping a
-- table with a foreign key locks the table it references too; clients lock
-- public.room_members first (a delete there cascades into the other), so taking them in
-- that order, at once, closes no deadlock with them.
lock table public.room_members, watchium_private.member_playback in access exclusive mode;

create or replace function watchium_rpc.maintain()
returns jsonb
language plpgsql
volatile
security definer  -- removes members, rooms, partitions and log rows owned by the package
set search_path = pg_catalog, pg_temp
as $$
declare
  v_timeout interval := coalesce(watchium_private.setting_interval('maintenance_lock_timeout'),
                                 interval '50 milliseconds');
  v_rooms   jsonb;
  v_queues  jsonb;
  v_events  jsonb;
  v_rates   jsonb;
  v_history jsonb;
  v_skipped jsonb := '[]'::jsonb;
begin
  perform pg_catalog.set_config('lock_timeout',
    ((pg_catalog.date_part('epoch', v_timeout) * 1000)::bigint)::text || 'ms', true);

  begin
    v_rooms := watchium_private.maintain_rooms();
  exception when lock_not_available then
    v_rooms := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'rooms', 'reason', 'lock timeout: the whole job is retried by the next run');
  end;
  if coalesce((v_rooms ->> 'rooms_skipped_busy')::integer, 0) > 0 then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'rooms', 'reason', (v_rooms ->> 'rooms_skipped_busy') || ' room(s) locked by callers');
  end if;
  if coalesce((v_rooms ->> 'members_skipped_busy')::integer, 0) > 0 then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'rooms', 'reason', (v_rooms ->> 'members_skipped_busy')
        || ' stale-looking member(s) locked by callers or refreshed by a heartbeat');
  end if;

  -- Queues whose current item is over and that no caller advanced (rooms
  -- whose members stopped sending heartbeats); rooms busy with callers are
  -- theirs to advance.
  begin
    v_queues := watchium_private.maintain_queues();
  exception when lock_not_available then
    v_queues := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object('job', 'queues', 'reason', 'lock timeout');
  end;
  if coalesce((v_queues ->> 'queues_skipped_busy')::integer, 0) > 0 then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'queues', 'reason', (v_queues ->> 'queues_skipped_busy') || ' room(s) locked by callers');
  end if;

  begin
    v_events := watchium_private.expire_room_events();
  exception when lock_not_available then
    v_events := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object('job', 'room_events', 'reason', 'lock timeout');
  end;
  begin
    v_rates := watchium_private.expire_rate_limit_counters();
  exception when lock_not_available then
    v_rates := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object('job', 'rate_limits', 'reason', 'lock timeout');
  end;

  v_history := watchium_private.maintain_sync_history();
  v_skipped := v_skipped || coalesce((
    select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('job', 'sync_history') || s.x)
    from pg_catalog.jsonb_array_elements(v_history -> 'skipped') as s(x)), '[]'::jsonb);

  return pg_catalog.jsonb_build_object(
    'rooms', v_rooms,
    'queues', v_queues,
    'room_events', v_events,
    'rate_limits', v_rates,
    'sync_history', v_history,
    'skipped', v_skipped,
    'ran_at', pg_catalog.now()
  );
end;
$$;
comment on function watchium_rpc.maintain() is
  'Body of public.maintain (same arguments, result and errors; documented there). Security definer: removes members, rooms, partitions and log rows owned by the package. Callers reach it through public.maintain, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';

drop function public.set_ready(text, boolean);
drop function watchium_rpc.set_ready(text, boolean);
drop function public.start_ready_check(text, numeric, integer);
drop function watchium_rpc.start_ready_check(text, numeric, integer);
drop function public.force_resume(text);
drop function watchium_rpc.force_resume(text);
drop function public.set_wait_opt_out(text, boolean);
drop function watchium_rpc.set_wait_opt_out(text, boolean);
drop function public.report_playback_status(text, text, numeric);
drop function watchium_rpc.report_playback_status(text, text, numeric);
drop function watchium_private.member_wait_reply(public.rooms, text);
drop function watchium_private.lock_member_room(text, text);
drop function watchium_private.apply_due_sync_deadlines();
drop function watchium_private.apply_sync_deadlines(text, boolean);
drop function watchium_private.settle_room(public.rooms, text);
drop function watchium_private.end_wait(public.rooms, text, text, text[]);
drop function watchium_private.emit_sync_wait(public.rooms, text, text, text, text[], timestamptz, text);
drop function watchium_private.begin_wait(public.rooms, text, timestamptz, integer);
drop function watchium_private.playback_payload(public.rooms, text);
drop function watchium_private.room_wait_state(public.rooms);
drop function watchium_private.ready_count(public.rooms);
drop function watchium_private.room_blockers(text);
drop function watchium_private.scheduled_start_at(public.rooms, timestamptz, boolean);
drop table watchium_private.member_playback;
delete from watchium_private.rate_limit_counters where action = 'playback_status';
delete from watchium_private.rate_limit_rules where action = 'playback_status';
