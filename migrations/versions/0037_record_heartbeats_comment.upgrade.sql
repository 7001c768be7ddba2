-- =============================================================================
-- 0037 record_heartbeats' comment names both causes of 'throttled'
--
-- Since 0033 the batch updates each presence row at the address it read, and a
-- member whose presence another transaction updated meanwhile comes out
-- 'throttled'. The function's comment, which DBAs and the Data API's
-- introspection read, still gave "too early" as the only cause.
-- A comment only: no table is locked. lock_timeout and statement_timeout are
-- set by migrations/env.py.
-- =============================================================================

comment on function public.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]) is
  'service_role only: many members'' heartbeats of one room in one call (element i of p_user_ids, p_current_times, p_is_playing and, optionally, p_client_times, p_rtts_ms, p_episode_numbers; 1 to 1000). One row per member: outcome (ok, throttled, not_member), sync status (as record_heartbeat: latency-corrected, the room''s boundaries, wrong_episode), smoothed RTT, clock offset. Rate limited per member by heartbeat_min_interval. Outcome throttled, with nothing written for that member, when the heartbeat comes too early, or when another transaction updated that member''s presence while the batch waited for the row.';
