-- =============================================================================
-- 0037 downgrade: record_heartbeats' comment as 0024 wrote it.
-- =============================================================================

comment on function public.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[]) is
  'service_role only: many members'' heartbeats of one room in one call (element i of p_user_ids, p_current_times, p_is_playing and, optionally, p_client_times, p_rtts_ms, p_episode_numbers; 1 to 1000). One row per member: outcome (ok, throttled, not_member), sync status (as record_heartbeat: latency-corrected, the room''s boundaries, wrong_episode), smoothed RTT, clock offset. Rate limited per member by heartbeat_min_interval (too early: throttled, nothing written).';
