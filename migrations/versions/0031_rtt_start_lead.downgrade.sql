-- =============================================================================
-- 0031 (downgrade): scheduled_start_at of 0021 (minimum lead and countdown
-- only); the round-trip lead and its setting go.
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
  o record := watchium_private.room_sync_options(p_room);
begin
  return p_at + pg_catalog.make_interval(secs => greatest(
    o.min_start_lead,
    case when p_episode_start then o.episode_countdown else 0 end
  )::double precision);
end;
$$;
comment on function watchium_private.scheduled_start_at(public.rooms, timestamptz, boolean) is
  'When a start decided at p_at takes effect: p_at + the room''s minimum start lead (for an episode start, at least its countdown). Stored as rooms.playback_updated_at with is_playing true. Internal.';

-- squawk-ignore ban-drop-function

delete from watchium_private.settings where key = 'sync_max_rtt_start_lead';
