-- =============================================================================
-- 0038 (downgrade): scheduled_start_at of 0031 (three statements, the room's
-- options through room_sync_options), exactly.
-- =============================================================================
create or replace function watchium_private.scheduled_start_at(
  p_room public.rooms,
  p_at timestamptz,
  p_episode_start boolean
)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  o             record := watchium_private.room_sync_options(p_room);
  v_stale_after interval;
  v_cap         numeric;
  v_p90         numeric;
begin
  -- The round-trip lead: 2 × the 90th percentile (percentile_disc: a value
  -- some member has) of the smoothed RTT of the room's members with a known
  -- RTT and a heartbeat within member_stale_after of p_at, at most the
  -- setting sync_max_rtt_start_lead (5 s); 0 when none. Written out here, not
  -- as a helper: a host control that began before this revision's downgrade
  -- could still call a helper the downgrade drops.
  select coalesce(pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'member_stale_after'),
                  interval '30 seconds'),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_max_rtt_start_lead'),
                  5)
  into v_stale_after, v_cap
  from watchium_private.settings as s
  where s.key in ('member_stale_after', 'sync_max_rtt_start_lead');

  -- Sorted as double precision (cheaper to compare than numeric); an rtt_ms
  -- (numeric(8,1)) comes back unchanged from a double (15 significant digits).
  -- One aggregate over the room's presence rows through their primary key.
  select (pg_catalog.percentile_disc(0.9) within group (order by p.rtt_ms::double precision))::numeric
  into v_p90
  from watchium_private.member_presence as p
  where p.room_id = p_room.room_id
    and p.rtt_ms is not null
    and p.last_heartbeat >= p_at - v_stale_after;

  return p_at + pg_catalog.make_interval(secs => greatest(
    o.min_start_lead,
    least(coalesce(2 * v_p90 / 1000, 0), v_cap),
    case when p_episode_start then o.episode_countdown else 0 end
  )::double precision);
end;
$$;
comment on function watchium_private.scheduled_start_at(public.rooms, timestamptz, boolean) is
  'When a start decided at p_at takes effect: p_at + the greatest of the room''s minimum start lead, the round-trip lead (2 × the live members'' 90th percentile RTT, capped by sync_max_rtt_start_lead) and, for an episode start, its countdown. Stored as rooms.playback_updated_at with is_playing true. Internal.';
