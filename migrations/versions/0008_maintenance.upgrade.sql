-- =============================================================================
-- 0008 maintenance
--
-- public.maintain() runs every periodic job of the package in one call:
--   rooms         stale members removed (with host transfer), empty rooms closed
--   sync history  hourly partitions created ahead, expired partitions dropped
--   room events   the catch-up log trimmed to its retention
--   rate limits   counter rows of windows that ended a day ago deleted
-- Where pg_cron is installed it is scheduled every minute; where pg_cron is
-- enabled later (it is off in a new Supabase project) run `watchium-db
-- schedule` (public.install_maintenance_schedule()); elsewhere run
-- `watchium-db maintain` from cron or a systemd timer. `watchium-db doctor`
-- reports a missing, inactive or failing schedule.
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
-- public.install_maintenance_schedule(): schedule public.maintain() every
-- minute with pg_cron as job 'watchium-db-maintain'; idempotent.
--
-- Run by this revision when pg_cron is installed, and again by hand (or
-- `watchium-db schedule`) when pg_cron is enabled later, as on a new Supabase
-- project where it is off. A job that exists as wanted is left alone; one that
-- differs (schedule, command, database) or is inactive is replaced. Uses
-- cron.schedule_in_database where the owner may execute it (pg_cron revokes it
-- from public), else cron.schedule, which schedules in cron.database_name: the
-- only database where the extension can be created, so this one.
-- Raises 55000 when pg_cron is not installed. Callable by service_role and the
-- owner. Security definer: the job belongs to (and runs maintain() as) the
-- owner of the package's functions, whoever asks for it.
-- -----------------------------------------------------------------------------
create function public.install_maintenance_schedule()
returns jsonb
language plpgsql
volatile
security definer  -- the pg_cron job is the owner's, so it may run public.maintain()
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
declare
  c_name     constant text := 'watchium-db-maintain';
  c_schedule constant text := '* * * * *';
  c_command  constant text := 'select public.maintain()';
  v_in_db    boolean;
  v_job      record;
  v_job_id   bigint;
  v_replaced integer := 0;
begin
  if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise exception 'pg_cron is not installed in database %', pg_catalog.current_database()
      using errcode = '55000',
            hint = 'Enable it (Supabase: Database > Extensions > pg_cron; elsewhere: shared_preload_libraries = pg_cron, then create extension pg_cron) and run `watchium-db schedule` again, or run `watchium-db maintain` every minute from cron.';
  end if;
  v_in_db := pg_catalog.to_regprocedure('cron.schedule_in_database(text, text, text, text, text, boolean)') is not null
    and pg_catalog.has_function_privilege(
      'cron.schedule_in_database(text, text, text, text, text, boolean)', 'execute');
  -- cron.job is read through dynamic SQL: the cron schema does not exist without pg_cron.
  for v_job in execute
    'select j.jobid, j.schedule, j.command, j.database, j.active from cron.job as j where j.jobname = $1'
    using c_name
  loop
    if v_job.schedule = c_schedule and v_job.command = c_command
       and v_job.database = pg_catalog.current_database() and v_job.active then
      return pg_catalog.jsonb_build_object(
        'job_id', v_job.jobid, 'status', 'already scheduled', 'schedule', c_schedule,
        'command', c_command, 'database', v_job.database);
    end if;
    execute 'select cron.unschedule($1)' using v_job.jobid;
    v_replaced := v_replaced + 1;
  end loop;
  if v_in_db then
    execute 'select cron.schedule_in_database($1, $2, $3, $4)'
      into v_job_id using c_name, c_schedule, c_command, pg_catalog.current_database();
  else
    execute 'select cron.schedule($1, $2, $3)'
      into v_job_id using c_name, c_schedule, c_command;
  end if;
  return pg_catalog.jsonb_build_object(
    'job_id', v_job_id, 'status', case when v_replaced > 0 then 'replaced' else 'scheduled' end,
    'schedule', c_schedule, 'command', c_command, 'database', pg_catalog.current_database(),
    'via', case when v_in_db then 'cron.schedule_in_database' else 'cron.schedule' end);
end;
$$;
comment on function public.install_maintenance_schedule() is
  'Schedules public.maintain() every minute with pg_cron (job watchium-db-maintain), or leaves an identical job alone; returns the job and what was done. Run it (or `watchium-db schedule`) after enabling pg_cron. 55000 when pg_cron is not installed. Security definer: the job runs as the owner.';
revoke all on function public.install_maintenance_schedule() from public, anon, authenticated;
grant execute on function public.install_maintenance_schedule() to service_role;

-- Schedule now where pg_cron is installed. A role that may not use the cron
-- schema gets a warning here and a problem from `watchium-db doctor`.
do $schedule$
begin
  if exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform public.install_maintenance_schedule();
  end if;
exception when insufficient_privilege then
  raise warning 'maintenance is not scheduled: %', sqlerrm
    using hint = 'grant usage on schema cron to the migrating role and run `watchium-db schedule`, or run `watchium-db maintain` every minute from cron';
end
$schedule$;

-- -----------------------------------------------------------------------------
-- Apply rpc_lock_timeout to the RPCs created since 0003 (their definitions say
-- 2s; a value changed before an upgrade that recreated them wins again).
-- -----------------------------------------------------------------------------
update watchium_private.settings set value = value where key = 'rpc_lock_timeout';
