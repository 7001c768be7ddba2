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
--
-- It never makes the hot path queue behind it for long: every lock it waits
-- for is bounded by maintenance_lock_timeout (50 ms); the rooms job takes row
-- locks with SKIP LOCKED only (lock order of docs/architecture.md); a job or
-- DDL step that cannot get a lock is skipped, listed in "skipped", and
-- retried by the next run. The sync history job runs last, so the locks its
-- DDL takes are held only until the commit that follows.
-- -----------------------------------------------------------------------------
create function watchium_rpc.maintain()
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
revoke all on function watchium_rpc.maintain() from public;
grant execute on function watchium_rpc.maintain() to service_role;

-- -----------------------------------------------------------------------------
-- public.maintain: the Data API entry point; its body is watchium_rpc.maintain
-- above. Security invoker: it runs with the caller's rights and only passes the
-- arguments on; the body checks them and the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.maintain()
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
as $$
begin
  return watchium_rpc.maintain();
end;
$$;
comment on function public.maintain() is
  'Runs every periodic job (stale members, empty rooms, event log, rate-limit windows, sync history partitions) and returns a summary; "skipped" lists what could not get its lock within maintenance_lock_timeout (retried by the next run). Never waits longer than that for a lock. Run it every minute: pg_cron does where installed; otherwise `watchium-db maintain`. Its body, watchium_rpc.maintain(), is security definer: it removes rows and partitions clients cannot touch.';
revoke all on function public.maintain() from public, anon, authenticated;
grant execute on function public.maintain() to service_role;

-- -----------------------------------------------------------------------------
-- public.sync_history_health(): the state of the sync history partitions, for
-- `watchium-db doctor` and monitoring. Reads the catalog (and at most
-- sync_history_drain_batch + 1 rows of the default partition), so it shows
-- what skipped maintenance steps left behind:
--   problems  the partition of this hour or the next is missing although
--             maintenance has run before (history lands in the default
--             partition); before the first run that is a warning;
--   warnings  hours of the premake window not attached yet (creation
--             skipped), expired partitions still attached (retirement
--             skipped), tables of ours not attached, rows in the default
--             partition.
-- Security definer: reads a table clients have no rights on. service_role.
-- -----------------------------------------------------------------------------
create function watchium_rpc.sync_history_health()
returns jsonb
language plpgsql
stable
security definer  -- counts rows of public.sync_states_default
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now       timestamptz := pg_catalog.now();
  v_retention interval := coalesce(watchium_private.setting_interval('sync_history_retention'), interval '6 hours');
  v_premake   interval := coalesce(watchium_private.setting_interval('sync_history_premake'), interval '1 day');
  v_batch     bigint := coalesce(
                (select (s.value #>> '{}')::bigint from watchium_private.settings as s
                 where s.key = 'sync_history_drain_batch'), 10000);
  v_this_hour timestamptz := pg_catalog.date_trunc('hour', v_now at time zone 'UTC') at time zone 'UTC';
  v_attached  text[];
  v_detached  text[];
  v_missing   text[];
  v_expired   text[];
  v_default   bigint;
  v_problems  text[] := '{}'::text[];
  v_warnings  text[] := '{}'::text[];
begin
  select pg_catalog.array_agg(c.relname order by c.relname) filter (where c.relispartition),
         pg_catalog.array_agg(c.relname order by c.relname) filter (where not c.relispartition)
    into v_attached, v_detached
  from pg_catalog.pg_class as c
  where c.relnamespace = 'public'::pg_catalog.regnamespace
    and c.relkind = 'r'
    and c.relname ~ '^sync_states_p[0-9]{10}$';
  v_attached := coalesce(v_attached, '{}');
  v_detached := coalesce(v_detached, '{}');

  select pg_catalog.array_agg(n.name order by n.name) into v_missing
  from pg_catalog.generate_series(v_this_hour, v_this_hour + v_premake, interval '1 hour') as h
  cross join lateral (select 'sync_states_p' || pg_catalog.to_char(h at time zone 'UTC', 'YYYYMMDDHH24') as name) as n
  where n.name <> all (v_attached);
  v_missing := coalesce(v_missing, '{}');

  select pg_catalog.array_agg(a.name order by a.name) into v_expired
  from pg_catalog.unnest(v_attached) as a(name)
  where (pg_catalog.to_timestamp(pg_catalog.substr(a.name, 14), 'YYYYMMDDHH24')::timestamp at time zone 'UTC')
        + interval '1 hour' <= v_now - v_retention;
  v_expired := coalesce(v_expired, '{}');

  select pg_catalog.count(*) into v_default
  from (select from public.sync_states_default limit v_batch + 1) as x;

  if pg_catalog.cardinality(v_attached) = 0 then
    v_warnings := v_warnings || ('no hourly partition of the sync history yet: maintenance has not run since '
      || 'the upgrade. Run `watchium-db maintain` (and schedule it every minute)'::text);
  elsif v_missing && array['sync_states_p' || pg_catalog.to_char(v_this_hour at time zone 'UTC', 'YYYYMMDDHH24'),
                        'sync_states_p' || pg_catalog.to_char((v_this_hour + interval '1 hour') at time zone 'UTC', 'YYYYMMDDHH24')] then
    v_problems := v_problems || ('the sync history partition of this hour or the next is missing: history goes to '
      || 'the default partition. Run `watchium-db maintain` (and check that it is scheduled every minute); '
      || 'see "skipped" in its output');
  elsif pg_catalog.cardinality(v_missing) > 0 then
    v_warnings := v_warnings || (pg_catalog.cardinality(v_missing)::text || ' hourly partition(s) of the next '
      || v_premake::text || ' are not attached yet (maintenance skipped creating them, e.g. on a lock timeout '
      || 'behind a long transaction; the next runs retry): ' || pg_catalog.array_to_string(v_missing, ', '));
  end if;
  if pg_catalog.cardinality(v_expired) > 0 then
    v_warnings := v_warnings || (pg_catalog.cardinality(v_expired)::text || ' expired partition(s) still attached '
      || '(maintenance skipped detaching them, e.g. behind a long reader; the next runs retry): '
      || pg_catalog.array_to_string(v_expired, ', '));
  end if;
  if pg_catalog.cardinality(v_detached) > 0 then
    v_warnings := v_warnings || ('table(s) of the sync history not attached (the next maintenance run attaches '
      || 'or drops them): ' || pg_catalog.array_to_string(v_detached, ', '));
  end if;
  if v_default > 0 then
    v_warnings := v_warnings || (case when v_default > v_batch then 'more than ' || v_batch::text
                                      else v_default::text end
      || ' row(s) in public.sync_states_default (maintenance moves at most ' || v_batch::text
      || ' per run into their hourly partitions)');
  end if;

  return pg_catalog.jsonb_build_object(
    'ok', pg_catalog.cardinality(v_problems) = 0,
    'problems', pg_catalog.to_jsonb(v_problems),
    'warnings', pg_catalog.to_jsonb(v_warnings),
    'partitions', pg_catalog.cardinality(v_attached),
    'missing_ahead', pg_catalog.to_jsonb(v_missing),
    'expired_attached', pg_catalog.to_jsonb(v_expired),
    'detached', pg_catalog.to_jsonb(v_detached),
    'default_rows', v_default,
    'premake', v_premake::text,
    'retention', v_retention::text
  );
end;
$$;
comment on function watchium_rpc.sync_history_health() is
  'Body of public.sync_history_health (same arguments, result and errors; documented there). Security definer: counts rows of public.sync_states_default. Callers reach it through public.sync_history_health, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.sync_history_health() from public;
grant execute on function watchium_rpc.sync_history_health() to service_role;

-- -----------------------------------------------------------------------------
-- public.sync_history_health: the Data API entry point; its body is
-- watchium_rpc.sync_history_health above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.sync_history_health()
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.sync_history_health();
end;
$$;
comment on function public.sync_history_health() is
  'The sync history partitions for `watchium-db doctor`: problems (this or the next hour not partitioned) and warnings (premake hours missing, expired partitions still attached, detached tables, rows in the default partition), each left by maintenance steps skipped on a lock timeout. service_role; its body, watchium_rpc.sync_history_health(), is security definer.';
revoke all on function public.sync_history_health() from public, anon, authenticated;
grant execute on function public.sync_history_health() to service_role;

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
create function watchium_rpc.install_maintenance_schedule()
returns jsonb
language plpgsql
volatile
security definer  -- the pg_cron job is the owner's, so it may run public.maintain()
set search_path = pg_catalog, pg_temp
as $$
declare
  c_name     constant text := 'watchium-db-maintain';
  c_schedule constant text := '* * * * *';
  c_command  constant text := 'select public.maintain()';
  v_in_db    boolean;
  v_job_id   bigint;
  v_schedule text;
  v_command  text;
  v_database text;
  v_active   boolean;
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
  -- The cron schema exists only with pg_cron: every statement that names it is
  -- built by format() at run time, so that creating (and checking) this
  -- function does not need it.
  for v_job_id, v_schedule, v_command, v_database, v_active in execute pg_catalog.format(
    'select j.jobid, j.schedule, j.command, j.database, j.active from %I.job as j where j.jobname = $1',
    'cron') using c_name
  loop
    if v_schedule = c_schedule and v_command = c_command
       and v_database = pg_catalog.current_database() and v_active then
      return pg_catalog.jsonb_build_object(
        'job_id', v_job_id, 'status', 'already scheduled', 'schedule', c_schedule,
        'command', c_command, 'database', v_database);
    end if;
    execute pg_catalog.format('select %I.unschedule($1)', 'cron') using v_job_id;
    v_replaced := v_replaced + 1;
  end loop;
  if v_in_db then
    execute pg_catalog.format('select %I.schedule_in_database($1, $2, $3, $4)', 'cron')
      into v_job_id using c_name, c_schedule, c_command, pg_catalog.current_database();
  else
    execute pg_catalog.format('select %I.schedule($1, $2, $3)', 'cron')
      into v_job_id using c_name, c_schedule, c_command;
  end if;
  return pg_catalog.jsonb_build_object(
    'job_id', v_job_id, 'status', case when v_replaced > 0 then 'replaced' else 'scheduled' end,
    'schedule', c_schedule, 'command', c_command, 'database', pg_catalog.current_database(),
    'via', case when v_in_db then 'cron.schedule_in_database' else 'cron.schedule' end);
end;
$$;
comment on function watchium_rpc.install_maintenance_schedule() is
  'Body of public.install_maintenance_schedule (same arguments, result and errors; documented there). Security definer: the pg_cron job is the owner''s, so it may run public.maintain(). Callers reach it through public.install_maintenance_schedule, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.install_maintenance_schedule() from public;
grant execute on function watchium_rpc.install_maintenance_schedule() to service_role;

-- -----------------------------------------------------------------------------
-- public.install_maintenance_schedule: the Data API entry point; its body is
-- watchium_rpc.install_maintenance_schedule above. Security invoker: it runs
-- with the caller's rights and only passes the arguments on; the body checks
-- them and the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.install_maintenance_schedule()
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.install_maintenance_schedule();
end;
$$;
comment on function public.install_maintenance_schedule() is
  'Schedules public.maintain() every minute with pg_cron (job watchium-db-maintain), or leaves an identical job alone; returns the job and what was done. Run it (or `watchium-db schedule`) after enabling pg_cron. 55000 when pg_cron is not installed. Its body, watchium_rpc.install_maintenance_schedule(), is security definer: the job runs as the owner.';
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
