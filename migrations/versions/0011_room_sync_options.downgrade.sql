-- =============================================================================
-- 0011 room sync options (downgrade): removes exactly what the upgrade added.
-- =============================================================================
drop function public.get_room_sync_options(text);
drop function watchium_rpc.get_room_sync_options(text);
drop function public.set_room_sync_options(text, jsonb);
drop function watchium_rpc.set_room_sync_options(text, jsonb);
drop function watchium_private.room_sync_options_json(public.rooms);
drop function watchium_private.room_sync_options(public.rooms);
drop function watchium_private.sync_option_defaults();
-- The constraints go with the columns they check (dropped next).
alter table public.rooms
  -- squawk-ignore ban-drop-constraint
  drop constraint rooms_sync_drift_check,
  -- squawk-ignore ban-drop-constraint
  drop constraint rooms_sync_first_load_timeout_check,
  -- squawk-ignore ban-drop-constraint
  drop constraint rooms_sync_rebuffer_timeout_check,
  -- squawk-ignore ban-drop-constraint
  drop constraint rooms_sync_min_start_lead_check,
  -- squawk-ignore ban-drop-constraint
  drop constraint rooms_sync_episode_countdown_check;
alter table public.rooms
  drop column sync_drift_perfect,
  drop column sync_drift_good,
  drop column sync_drift_minor,
  drop column sync_first_load_timeout,
  drop column sync_rebuffer_timeout,
  drop column sync_min_start_lead,
  drop column sync_episode_countdown;
delete from watchium_private.settings
where key in ('sync_drift_perfect', 'sync_drift_good', 'sync_drift_minor',
              'sync_first_load_timeout', 'sync_rebuffer_timeout', 'sync_min_start_lead',
              'sync_episode_countdown');
