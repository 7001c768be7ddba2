-- Reverts 0023: presence rows at the level wrong_episode (which 0.1.0 does not
-- know) become out_of_sync with no drift; the columns and checks go.
-- Calls that began before the revisions above were downgraded may still run
-- their bodies, which call the helpers dropped here: they end first.
select watchium_private.await_older_transactions();

-- The heartbeat helpers first (apply_heartbeats reads the columns).
drop function watchium_private.apply_heartbeats(public.rooms, text[], numeric[], boolean[], numeric[], numeric[], integer[]);
drop function watchium_private.needs_resync(timestamptz, numeric, timestamptz, boolean, numeric);
drop function watchium_private.heartbeat_settings();

update watchium_private.member_presence
set sync_level = case when sync_level = 'wrong_episode' then 'out_of_sync' else sync_level end,
    previous_sync_level = case when previous_sync_level = 'wrong_episode' then 'out_of_sync'
                               else previous_sync_level end
where sync_level = 'wrong_episode' or previous_sync_level = 'wrong_episode';
-- The downgrade restores 0.1.0's checks: the rows were mapped back to its levels just above.
alter table watchium_private.member_presence
  -- squawk-ignore ban-drop-constraint
  drop constraint member_presence_sync_level_check,
  -- squawk-ignore constraint-missing-not-valid
  add constraint member_presence_sync_level_check check (
    sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync')
    and previous_sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync')
  ),
  -- squawk-ignore ban-drop-constraint
  drop constraint member_presence_rtt_ms_check,
  -- squawk-ignore ban-drop-constraint
  drop constraint member_presence_clock_offset_ms_check,
  -- squawk-ignore ban-drop-constraint
  drop constraint member_presence_reported_episode_check;
alter table watchium_private.member_presence
  drop column rtt_ms,
  drop column clock_offset_ms,
  drop column reported_episode;
