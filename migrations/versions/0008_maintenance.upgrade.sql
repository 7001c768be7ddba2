-- =============================================================================
-- 0008 maintenance
--
-- public.maintain() runs every periodic job of the package in one call:
--   rooms         stale members removed (with host transfer), empty rooms closed
--   sync history  hourly partitions created ahead, expired partitions dropped
--   room events   the catch-up log trimmed to its retention
--   rate limits   counter rows of windows that ended a day ago deleted
-- Where pg_cron is installed (Supabase has it), it is scheduled every minute;
-- elsewhere run `watchium-db maintain` from cron or a systemd timer.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.expire_rate_limit_counters(): delete windows that ended.
-- A window is at most one day long (rate_limit_rules_window_minutes_check),
-- so rows that started over a day ago are never read again.
-- -----------------------------------------------------------------------------
create function watchium_private.expire_rate_limit_counters()
returns jsonb
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
  with expired as (
    delete from watchium_private.rate_limit_counters as c
    where c.window_start < pg_catalog.now() - interval '1 day'
    returning 1
  )
  select pg_catalog.jsonb_build_object('rate_limit_windows_deleted', (select count(*) from expired))
$$;
comment on function watchium_private.expire_rate_limit_counters() is
  'Deletes rate-limit counter rows of windows that started over a day ago. Internal; run by public.maintain().';
revoke all on function watchium_private.expire_rate_limit_counters() from public;

-- -----------------------------------------------------------------------------
-- public.maintain(): run every periodic job; returns what each one did.
-- Callable by service_role (and the owner, e.g. pg_cron or the CLI).
-- Security definer: it deletes and drops objects clients have no rights on.
-- -----------------------------------------------------------------------------
create function public.maintain()
returns jsonb
language plpgsql
volatile
security definer  -- removes members, rooms, partitions and log rows owned by the package
set search_path = pg_catalog, pg_temp
as $$
declare
  v_history jsonb;
  v_rooms   jsonb;
begin
  -- Partition DDL must not queue the hot path behind a long transaction: give up
  -- after 2 s (the next run retries) rather than stall every insert behind us.
  perform pg_catalog.set_config('lock_timeout', '2s', true);
  -- The history job first: it may lock sync_states (to attach a new partition)
  -- and must not wait for writers while this transaction holds member rows.
  begin
    v_history := watchium_private.maintain_sync_history();
  exception when lock_not_available then
    -- Busy writers held sync_states past the lock timeout: skip this run's
    -- partition work (the next run retries) and still do the rest.
    v_history := pg_catalog.jsonb_build_object('skipped', 'lock timeout on public.sync_states');
  end;
  v_rooms := watchium_private.maintain_rooms();
  return pg_catalog.jsonb_build_object(
    'sync_history', v_history,
    'rooms', v_rooms,
    'room_events', watchium_private.expire_room_events(),
    'rate_limits', watchium_private.expire_rate_limit_counters(),
    'ran_at', pg_catalog.now()
  );
end;
$$;
comment on function public.maintain() is
  'Runs every periodic job (stale members, empty rooms, sync history partitions, event log, rate-limit windows) and returns a summary. Run it every minute: pg_cron does where installed; otherwise `watchium-db maintain`. Security definer: it removes rows and partitions clients cannot touch.';
revoke all on function public.maintain() from public, anon, authenticated;
grant execute on function public.maintain() to service_role;

-- -----------------------------------------------------------------------------
-- Schedule it with pg_cron when the extension is installed. Dynamic SQL: the
-- cron schema does not exist elsewhere.
-- -----------------------------------------------------------------------------
do $schedule$
begin
  if exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    if pg_catalog.to_regprocedure('cron.schedule_in_database(text, text, text, text, text, boolean)') is not null then
      execute 'select cron.schedule_in_database($1, $2, $3, $4)'
        using 'watchium-db-maintain', '* * * * *', 'select public.maintain()', pg_catalog.current_database();
    else
      execute 'select cron.schedule($1, $2, $3)'
        using 'watchium-db-maintain', '* * * * *', 'select public.maintain()';
    end if;
  end if;
end
$schedule$;

-- -----------------------------------------------------------------------------
-- Apply rpc_lock_timeout to the RPCs created since 0003 (their definitions say
-- 2s; a value changed before an upgrade that recreated them wins again).
-- -----------------------------------------------------------------------------
update watchium_private.settings set value = value where key = 'rpc_lock_timeout';
