-- =============================================================================
-- 0013 episode queue (downgrade): removes exactly what the upgrade added.
-- Queued items are lost; rooms keep the episode they play.
-- =============================================================================
-- Calls that began before the revisions above were downgraded may still run
-- their bodies, which call the helpers dropped here: they end first.
select watchium_private.await_older_transactions();

-- Lock order: the busy table first, then the one dropped here. Dropping a
-- table with a foreign key locks the table it references too; clients lock
-- public.rooms first (a delete there cascades into the other), so taking them in
-- that order, at once, closes no deadlock with them.
lock table public.rooms, public.room_queue in access exclusive mode;

drop function public.get_queue(text);
drop function watchium_rpc.get_queue(text);
drop function public.advance_queue(text, bigint);
drop function watchium_rpc.advance_queue(text, bigint);
drop function public.remove_queue_item(text, bigint);
drop function watchium_rpc.remove_queue_item(text, bigint);
drop function public.move_queue_item(text, bigint, integer);
drop function watchium_rpc.move_queue_item(text, bigint, integer);
drop function public.add_to_queue(text, text, text, integer, text, numeric);
drop function watchium_rpc.add_to_queue(text, text, text, integer, text, numeric);
drop function watchium_private.require_queue_item(text, bigint, text);
drop function watchium_private.lock_queue_room(text, text);
-- maintain() as 0008 defined it (without the queues job).
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

drop function watchium_private.maintain_queues();
drop function watchium_private.auto_advance_queue(text);
drop function watchium_private.queue_advance_due(public.rooms);
drop function watchium_private.advance_room_queue(public.rooms, text, text);
drop function watchium_private.queue_json(public.rooms);
drop function watchium_private.queue_item_json(public.room_queue);
drop function watchium_private.require_queue_permission(public.rooms, text, text);
drop trigger _150_leave_queue_item on public.rooms;
drop function watchium_private.tg_rooms__leave_queue_item();
drop table public.room_queue;
-- Their CHECK constraints and rooms_queue_advance_idx go with the columns.
alter table public.rooms
  drop column queue_advance_after,
  drop column queue_item_id;
delete from watchium_private.rate_limit_counters where action = 'queue_edit';
delete from watchium_private.rate_limit_rules where action = 'queue_edit';
delete from watchium_private.settings
where key in ('queue_advance_grace', 'max_queue_items_per_user', 'max_queue_items_per_room');
