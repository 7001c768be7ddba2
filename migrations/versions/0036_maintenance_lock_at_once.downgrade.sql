-- =============================================================================
-- 0036 downgrade: maintain_sync_history() as 0007 defined it; lock_at_once
-- dropped.
-- =============================================================================

create or replace function watchium_private.maintain_sync_history()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now       timestamptz := pg_catalog.now();
  v_retention interval := coalesce(watchium_private.setting_interval('sync_history_retention'), interval '6 hours');
  v_premake   interval := coalesce(watchium_private.setting_interval('sync_history_premake'), interval '1 day');
  v_metrics   interval := coalesce(watchium_private.setting_interval('realtime_metrics_retention'), interval '24 hours');
  v_timeout   interval := coalesce(watchium_private.setting_interval('maintenance_lock_timeout'), interval '50 milliseconds');
  v_batch     bigint := coalesce(
                (select (s.value #>> '{}')::bigint from watchium_private.settings as s
                 where s.key = 'sync_history_drain_batch'), 10000);
  v_this_hour timestamptz := pg_catalog.date_trunc('hour', v_now at time zone 'UTC') at time zone 'UTC';
  v_cutoff    timestamptz := v_now - v_retention;
  v_hour      timestamptz;
  v_name      text;
  v_count     bigint;
  v_left      bigint;
  v_attached  boolean;
  v_exists    boolean;
  v_ddl_ok    boolean := true;
  v_created   text[] := '{}'::text[];
  v_attached_names text[] := '{}'::text[];
  v_dropped   text[] := '{}'::text[];
  v_skipped   jsonb := '[]'::jsonb;
  v_moved_total bigint := 0;
  v_expired   bigint := 0;
  v_metrics_expired bigint := 0;
begin
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('watchium_private.maintain_sync_history')) then
    return pg_catalog.jsonb_build_object(
      'created', '[]'::jsonb, 'attached', '[]'::jsonb, 'dropped', '[]'::jsonb,
      'moved_from_default', 0, 'expired_from_default', 0, 'left_in_default', null,
      'metrics_expired', 0,
      'skipped', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'step', 'run', 'table', null, 'reason', 'another maintenance run is in progress')));
  end if;
  perform pg_catalog.set_config('lock_timeout',
    ((pg_catalog.date_part('epoch', v_timeout) * 1000)::bigint)::text || 'ms', true);

  -- Drain, expired rows: deleted, at most v_batch.
  begin
    delete from public.sync_states_default as d
    where d.ctid = any (array(
      select x.ctid from public.sync_states_default as x where x.created_at < v_cutoff limit v_batch));
    get diagnostics v_expired = row_count;
  exception when lock_not_available then
    v_ddl_ok := false;
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'step', 'drain', 'table', 'sync_states_default', 'reason', 'lock timeout');
  end;

  -- Drain, unexpired rows: moved to their hour's table (created detached when
  -- missing; attached below), at most v_batch in all.
  v_left := v_batch;
  for v_hour in
    select distinct pg_catalog.date_trunc('hour', x.created_at at time zone 'UTC') at time zone 'UTC'
    from (select d.created_at from public.sync_states_default as d
          where d.created_at >= v_cutoff limit v_batch) as x
    order by 1
  loop
    exit when not v_ddl_ok or v_left <= 0;
    v_name := 'sync_states_p' || pg_catalog.to_char(v_hour at time zone 'UTC', 'YYYYMMDDHH24');
    begin
      if pg_catalog.to_regclass('public.' || v_name) is null then
        perform watchium_private.create_sync_history_table(v_name, v_hour);
        v_created := v_created || v_name;
      end if;
      execute pg_catalog.format(
        'with moved as (delete from public.sync_states_default where ctid = any (array('
        '  select ctid from public.sync_states_default where created_at >= $1 and created_at < $2 limit $3)) returning *)'
        ' insert into public.%I select * from moved', v_name)
        using v_hour, v_hour + interval '1 hour', v_left;
      get diagnostics v_count = row_count;
      v_moved_total := v_moved_total + v_count;
      v_left := v_left - v_count;
    exception
      when lock_not_available then
        v_ddl_ok := false;
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'drain', 'table', v_name, 'reason', 'lock timeout');
      when others then
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'drain', 'table', v_name, 'reason', sqlerrm, 'sqlstate', sqlstate);
    end;
  end loop;

  -- Create and attach: this hour and the premake window ahead, plus every
  -- unexpired table of ours that is not attached (drained above, or detached).
  for v_hour in
    select h from pg_catalog.generate_series(v_this_hour, v_this_hour + v_premake, interval '1 hour') as h
    union
    select pg_catalog.to_timestamp(pg_catalog.substr(c.relname, 14), 'YYYYMMDDHH24')::timestamp at time zone 'UTC'
    from pg_catalog.pg_class as c
    where c.relnamespace = 'public'::pg_catalog.regnamespace
      and c.relkind = 'r'
      and c.relname ~ '^sync_states_p[0-9]{10}$'
      and not c.relispartition
    order by 1
  loop
    exit when not v_ddl_ok;
    continue when v_hour + interval '1 hour' <= v_cutoff;
    v_name := 'sync_states_p' || pg_catalog.to_char(v_hour at time zone 'UTC', 'YYYYMMDDHH24');
    select true, c.relispartition into v_exists, v_attached
    from pg_catalog.pg_class as c
    where c.oid = pg_catalog.to_regclass('public.' || v_name);
    continue when v_attached;
    begin
      if v_exists is null then
        perform watchium_private.create_sync_history_table(v_name, v_hour);
        v_created := v_created || v_name;
      else
        -- Ours but detached: give it back its bound (a scan of that table
        -- only, under its own lock) unless it still has it.
        if not exists (select from pg_catalog.pg_constraint as k
                       where k.conrelid = pg_catalog.to_regclass('public.' || v_name)
                         and k.conname = v_name || '_bound_check') then
          execute pg_catalog.format(
            'alter table public.%I add constraint %I check (created_at >= %L and created_at < %L)',
            v_name, v_name || '_bound_check', v_hour, v_hour + interval '1 hour');
        end if;
      end if;
      -- Catching up (this hour or a past one has no partition, so writers are
      -- routing its rows into the default partition right now): a writer that
      -- routed to the default partition before the attach would insert there
      -- after it and fail (23514). EXCLUSIVE on the parent makes writers wait
      -- for the attach instead (then they route to the new partition); readers
      -- go on. Never needed for partitions made ahead.
      if v_hour < pg_catalog.clock_timestamp() + interval '5 minutes' then
        lock table public.sync_states in exclusive mode;
      end if;
      -- The default partition must hold no row of this hour (ATTACH checks it):
      -- only then lock it (ATTACH needs that lock anyway) and move what came
      -- in meanwhile, if that is a bounded amount.
      if exists (select from public.sync_states_default as d
                 where d.created_at >= v_hour and d.created_at < v_hour + interval '1 hour') then
        lock table public.sync_states_default in access exclusive mode;
        select pg_catalog.count(*) into v_count
        from (select from public.sync_states_default as d
              where d.created_at >= v_hour and d.created_at < v_hour + interval '1 hour'
              limit v_left + 1) as x;
        if v_count > v_left then
          raise exception 'rows of this hour are still in the default partition (drained in batches of %)', v_batch;
        end if;
        execute pg_catalog.format(
          'with moved as (delete from public.sync_states_default where created_at >= $1 and created_at < $2 returning *)'
          ' insert into public.%I select * from moved', v_name)
          using v_hour, v_hour + interval '1 hour';
        get diagnostics v_count = row_count;
        v_moved_total := v_moved_total + v_count;
        v_left := v_left - v_count;
      end if;
      execute pg_catalog.format(
        'alter table public.sync_states attach partition public.%I for values from (%L) to (%L)',
        v_name, v_hour, v_hour + interval '1 hour');
      v_attached_names := v_attached_names || v_name;
    exception
      when lock_not_available then
        v_ddl_ok := false;
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'attach', 'table', v_name, 'reason', 'lock timeout');
      when others then
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'attach', 'table', v_name, 'reason', sqlerrm, 'sqlstate', sqlstate);
    end;
    v_exists := null;
    v_attached := null;
  end loop;
  -- "created" lists the tables created and attached in this run.
  v_created := array(select n from pg_catalog.unnest(v_created) as n
                     where n = any (v_attached_names) order by n);
  v_attached_names := array(select n from pg_catalog.unnest(v_attached_names) as n
                            where n <> all (v_created) order by n);

  -- Retire: expired tables of ours, attached (detach, then drop) or not (drop).
  for v_name, v_attached in
    select c.relname, c.relispartition
    from pg_catalog.pg_class as c
    where c.relnamespace = 'public'::pg_catalog.regnamespace
      and c.relkind = 'r'
      and c.relname ~ '^sync_states_p[0-9]{10}$'
      and (c.relispartition = false
           or exists (select from pg_catalog.pg_inherits as i
                      where i.inhrelid = c.oid and i.inhparent = 'public.sync_states'::pg_catalog.regclass))
      and (pg_catalog.to_timestamp(pg_catalog.substr(c.relname, 14), 'YYYYMMDDHH24')::timestamp
             at time zone 'UTC') + interval '1 hour' <= v_cutoff
    order by c.relname
  loop
    exit when not v_ddl_ok;
    begin
      if v_attached then
        execute pg_catalog.format('alter table public.sync_states detach partition public.%I', v_name);
      end if;
      execute pg_catalog.format('drop table public.%I', v_name);
      v_dropped := v_dropped || v_name;
    exception
      when lock_not_available then
        v_ddl_ok := false;
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'retire', 'table', v_name, 'reason', 'lock timeout');
      when others then
        v_skipped := v_skipped || pg_catalog.jsonb_build_object(
          'step', 'retire', 'table', v_name, 'reason', sqlerrm, 'sqlstate', sqlstate);
    end;
  end loop;

  begin
    delete from watchium_private.realtime_metrics as rm where rm.recorded_at < v_now - v_metrics;
    get diagnostics v_metrics_expired = row_count;
  exception when lock_not_available then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'step', 'metrics', 'table', 'realtime_metrics', 'reason', 'lock timeout');
  end;

  -- Bounded count: a default partition that needs more than one run says so.
  select pg_catalog.count(*) into v_count
  from (select from public.sync_states_default limit v_batch + 1) as x;
  return pg_catalog.jsonb_build_object(
    'created', pg_catalog.to_jsonb(v_created),
    'attached', pg_catalog.to_jsonb(v_attached_names),
    'dropped', pg_catalog.to_jsonb(v_dropped),
    'moved_from_default', v_moved_total,
    'expired_from_default', v_expired,
    'left_in_default', v_count,
    'metrics_expired', v_metrics_expired,
    'skipped', v_skipped
  );
end;
$$;
comment on function watchium_private.maintain_sync_history() is
  'The partition lifecycle of public.sync_states: creates hourly partitions this hour + sync_history_premake ahead (CREATE TABLE with the bound as CHECK, then ATTACH PARTITION), re-attaches tables of ours that are detached, moves at most sync_history_drain_batch rows out of the default partition per run, detaches and drops partitions older than sync_history_retention, expires old realtime metrics. Each DDL step under lock_timeout = maintenance_lock_timeout; a step that cannot get its lock is skipped (listed in "skipped") and retried by the next run. Returns what it did. Internal; run by maintenance.';
revoke all on function watchium_private.maintain_sync_history() from public;

comment on function public.maintain() is
  'Runs every periodic job (stale members, empty rooms, event log, rate-limit windows, sync history partitions) and returns a summary; "skipped" lists what could not get its lock within maintenance_lock_timeout (retried by the next run). Never waits longer than that for a lock. Run it every minute: pg_cron does where installed; otherwise `watchium-db maintain`. Its body, watchium_rpc.maintain(), is security definer: it removes rows and partitions clients cannot touch.';

drop function watchium_private.lock_at_once(text, interval);
