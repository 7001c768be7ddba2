-- =============================================================================
-- 0023 presence latency columns
--
-- watchium_private.member_presence gets the smoothed RTT, the clock offset and
-- the reported episode of each member, and the level wrong_episode, for the
-- latency-aware heartbeats of 0024. Nothing writes them before 0024.
-- The new columns are nullable without a default (no rewrite); the new checks
-- are added NOT VALID and validated in this transaction (every existing row
-- passes: the columns are null).
--
-- A revision of its own: 0024's downgrade puts back the heartbeat functions
-- that do not read these columns and commits before this one drops them, so
-- a heartbeat that started on 0024's functions never finds its columns gone.
-- =============================================================================

alter table watchium_private.member_presence
  add column rtt_ms numeric(8,1),
  add column clock_offset_ms numeric(6,1),
  add column reported_episode integer;
-- Widens the sync level check (adds wrong_episode) in the same statement: the old check is
-- replaced by a looser one, so no guarantee is lost.
alter table watchium_private.member_presence
  add constraint member_presence_rtt_ms_check check (rtt_ms between 0 and 60000) not valid,
  add constraint member_presence_clock_offset_ms_check
    check (clock_offset_ms between -2000 and 2000) not valid,
  add constraint member_presence_reported_episode_check
    check (reported_episode between 1 and 100000) not valid,
  -- squawk-ignore ban-drop-constraint
  drop constraint member_presence_sync_level_check,
  add constraint member_presence_sync_level_check check (
    sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync', 'wrong_episode')
    and previous_sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync', 'wrong_episode')
  ) not valid;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_rtt_ms_check;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_clock_offset_ms_check;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_reported_episode_check;
-- squawk-ignore constraint-missing-not-valid
alter table watchium_private.member_presence validate constraint member_presence_sync_level_check;
comment on column watchium_private.member_presence.rtt_ms is
  'Smoothed round-trip time of the member''s client, ms: EWMA of the reported samples (0.85 × previous + 0.15 × sample). Null until one is reported.';
comment on column watchium_private.member_presence.clock_offset_ms is
  'Server clock minus the client''s, ms, at the last heartbeat with a plausible send time (server time − client time − RTT/2). Null until one is reported.';
comment on column watchium_private.member_presence.reported_episode is
  'The episode the member said it plays at its last heartbeat (null: not said). Differs from rooms.episode_number: wrong episode, not drift.';

