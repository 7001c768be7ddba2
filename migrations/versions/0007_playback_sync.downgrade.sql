-- =============================================================================
-- 0007 playback sync (downgrade): removes exactly what the upgrade added.
-- Hourly partitions of public.sync_states created by maintenance at run time
-- are history data, not schema: they stay attached (0002's downgrade drops
-- them with the table).
-- =============================================================================
drop function public.forget_user(text);
drop function watchium_rpc.forget_user(text);
drop function public.get_realtime_metrics_summary(text, integer);
drop function watchium_rpc.get_realtime_metrics_summary(text, integer);
drop function public.record_realtime_metrics(text, integer, bigint, numeric, numeric);
drop function watchium_rpc.record_realtime_metrics(text, integer, bigint, numeric, numeric);
drop table watchium_private.realtime_metrics;
drop function public.get_room_sync_metrics(text);
drop function watchium_rpc.get_room_sync_metrics(text);
drop function watchium_private.maintain_sync_history();
drop function watchium_private.create_sync_history_table(text, timestamptz);
drop function public.get_room_sync_state(text);
drop function watchium_rpc.get_room_sync_state(text);
drop function public.record_heartbeats(text, text[], numeric[], boolean[]);
drop function watchium_rpc.record_heartbeats(text, text[], numeric[], boolean[]);
drop function watchium_private.apply_heartbeats(public.rooms, text[], numeric[], boolean[]);
drop function public.record_heartbeat(text, numeric, boolean);
drop function watchium_rpc.record_heartbeat(text, numeric, boolean);
drop function watchium_private.heartbeat_intervals();
drop function public.set_playback_speed(text, numeric);
drop function watchium_rpc.set_playback_speed(text, numeric);
drop function public.seek_to_time(text, numeric);
drop function watchium_rpc.seek_to_time(text, numeric);
drop function public.change_playback_state(text, boolean, numeric);
drop function watchium_rpc.change_playback_state(text, boolean, numeric);
drop function watchium_private.apply_host_control(text, text, text, boolean, numeric, numeric);
drop function public.bulk_sync_update(text, numeric, text);
drop function watchium_rpc.bulk_sync_update(text, numeric, text);
drop function watchium_private.sync_room_members(text, numeric, text, text, numeric);
drop function watchium_private.needs_resync(timestamptz, numeric, timestamptz, boolean);
drop function watchium_private.require_sync_room(text, text);
drop function watchium_private.require_playback_time(numeric, text);
drop function watchium_private.sync_level(numeric);

delete from watchium_private.rate_limit_counters
  where action in ('sync_control', 'realtime_metrics');
delete from watchium_private.rate_limit_rules
  where action in ('sync_control', 'realtime_metrics');
delete from watchium_private.settings
  where key in ('heartbeat_sample_interval', 'heartbeat_min_interval', 'sync_history_retention',
                'sync_history_premake', 'realtime_metrics_retention',
                'sync_history_drain_batch', 'maintenance_lock_timeout');
