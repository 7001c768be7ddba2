-- =============================================================================
-- 0039 room_sync_options reads the defaults itself
--
-- watchium_private.room_sync_options(room) (0011) called
-- sync_option_defaults() for the project defaults: a nested PL/pgSQL call with
-- its own SET clause (a setting saved and restored) around one read of the
-- settings. The heartbeats, the ready reports and the member replies call it;
-- on the bench machine the nested call was about two thirds of its cost
-- (45 of 65 µs in a room of 10).
--
-- Now the same read of the seven settings is its own first statement; the
-- room's values then replace the defaults as before (the drift boundaries as
-- one set). Same signature, same results, same defaults, same casts (a
-- malformed setting fails as before). sync_option_defaults() stays for other
-- readers. Functions only: no table is locked.
-- lock_timeout and statement_timeout are set by migrations/env.py.
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
begin
  -- The project defaults (sync_option_defaults(), written out: one read of
  -- the settings, no nested call).
  select coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_perfect'), 0.5),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_good'), 1),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_minor'), 2),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_first_load_timeout'), 60),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_rebuffer_timeout'), 10),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_min_start_lead'), 0.5),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_episode_countdown'), 0)
  into drift_perfect, drift_good, drift_minor, first_load_timeout, rebuffer_timeout,
       min_start_lead, episode_countdown
  from watchium_private.settings as s
  where s.key in ('sync_drift_perfect', 'sync_drift_good', 'sync_drift_minor',
                  'sync_first_load_timeout', 'sync_rebuffer_timeout', 'sync_min_start_lead',
                  'sync_episode_countdown');
  -- The room's own values. The drift boundaries are one set: the room's
  -- three, or the defaults'.
  if p_room.sync_drift_perfect is not null then
    drift_perfect := p_room.sync_drift_perfect;
    drift_good := p_room.sync_drift_good;
    drift_minor := p_room.sync_drift_minor;
  end if;
  first_load_timeout := coalesce(p_room.sync_first_load_timeout, first_load_timeout);
  rebuffer_timeout := coalesce(p_room.sync_rebuffer_timeout, rebuffer_timeout);
  min_start_lead := coalesce(p_room.sync_min_start_lead, min_start_lead);
  episode_countdown := coalesce(p_room.sync_episode_countdown, episode_countdown);
end;
$$;
comment on function watchium_private.room_sync_options(public.rooms) is
  'The effective sync options of a room, seconds: its own values (rooms.sync_*), else the project defaults (the settings sync_drift_perfect, sync_drift_good, sync_drift_minor, sync_first_load_timeout, sync_rebuffer_timeout, sync_min_start_lead, sync_episode_countdown, read as sync_option_defaults does). The drift boundaries come as one set. Internal.';
