-- =============================================================================
-- 0039 (downgrade): room_sync_options of 0011 (the defaults through
-- sync_option_defaults()), exactly.
-- =============================================================================
create or replace function watchium_private.room_sync_options(
  p_room public.rooms,
  out drift_perfect numeric,
  out drift_good numeric,
  out drift_minor numeric,
  out first_load_timeout numeric,
  out rebuffer_timeout numeric,
  out min_start_lead numeric,
  out episode_countdown numeric
)
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  d record := watchium_private.sync_option_defaults();
begin
  -- The drift boundaries are one set: the room's three, or the defaults'.
  if p_room.sync_drift_perfect is not null then
    drift_perfect := p_room.sync_drift_perfect;
    drift_good := p_room.sync_drift_good;
    drift_minor := p_room.sync_drift_minor;
  else
    drift_perfect := d.drift_perfect;
    drift_good := d.drift_good;
    drift_minor := d.drift_minor;
  end if;
  first_load_timeout := coalesce(p_room.sync_first_load_timeout, d.first_load_timeout);
  rebuffer_timeout := coalesce(p_room.sync_rebuffer_timeout, d.rebuffer_timeout);
  min_start_lead := coalesce(p_room.sync_min_start_lead, d.min_start_lead);
  episode_countdown := coalesce(p_room.sync_episode_countdown, d.episode_countdown);
end;
$$;
comment on function watchium_private.room_sync_options(public.rooms) is
  'The effective sync options of a room, seconds: its own values (rooms.sync_*), else the project defaults (sync_option_defaults). The drift boundaries come as one set. Internal.';
