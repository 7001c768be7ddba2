do $unschedule$
begin
  if exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    execute 'select cron.unschedule(jobid) from cron.job where jobname = $1'
      using 'watchium-db-maintain';
  end if;
end
$unschedule$;

drop function public.install_maintenance_schedule();
drop function watchium_rpc.install_maintenance_schedule();
drop function public.sync_history_health();
drop function watchium_rpc.sync_history_health();
drop function public.maintain();
drop function watchium_rpc.maintain();
drop function watchium_private.expire_rate_limit_counters();
