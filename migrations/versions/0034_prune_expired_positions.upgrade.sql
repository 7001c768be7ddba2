-- =============================================================================
-- 0034 trimmed positions of deleted rooms are pruned
--
-- expire_room_events records, per room, the highest position it deleted
-- (watchium_private.room_events_expired) so that a listener resuming from an
-- older position is told it lost events. Nothing removed those rows: a deleted
-- room's row stayed forever, one more row per room ever trimmed.
--
-- A row is now deleted by expire_room_events (maintenance) once it can no
-- longer tell anyone anything they need:
--   - the room no longer exists (public.rooms), so no event of it will come;
--   - no event of the room is left in room_events (every event it had was
--     trimmed: the row already covers them all);
--   - trimming has not moved the row for room_event_retention, so a listener
--     that stopped before the room was deleted and resumes within that time is
--     still told (EventsExpired) that it lost the rest of the room's events,
--     room_deleted included.
-- A room that exists keeps its row, however old: the guarantee is unchanged
-- for every live room. At most 1000 rows per run (SKIP LOCKED; the rest go on
-- the next runs), under maintenance's lock_timeout like the trimming itself.
-- The result gets "positions_pruned".
-- Functions only (and the table's comment): no table is locked.
-- lock_timeout and statement_timeout are set by migrations/env.py.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.expire_room_events(): 0004's body, then the pruning.
-- -----------------------------------------------------------------------------
create or replace function watchium_private.expire_room_events()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_retention interval := coalesce(
    watchium_private.setting_interval('room_event_retention'), interval '1 hour'
  );
  v_deleted bigint;
  v_pruned  bigint;
begin
  with deleted as (
    delete from watchium_private.room_events as e
    where e.created_at < pg_catalog.now() - v_retention
    returning e.room_id, e.xact_id, e.event_id
  ), highest as (
    select distinct on (d.room_id) d.room_id, d.xact_id, d.event_id
      from deleted as d
     order by d.room_id, d.xact_id desc, d.event_id desc
  ), recorded as (
    insert into watchium_private.room_events_expired as x (room_id, xact_id, event_id)
    select h.room_id, h.xact_id, h.event_id from highest as h
    on conflict (room_id) do update
      set xact_id = excluded.xact_id, event_id = excluded.event_id,
          expired_at = pg_catalog.now()
      where (x.xact_id, x.event_id) < (excluded.xact_id, excluded.event_id)
    returning 1
  )
  select pg_catalog.count(*) into v_deleted from deleted;

  -- Rows of deleted rooms with nothing left in the log, unchanged for a
  -- retention period (a listener resuming within it is still told). The
  -- events deleted above are gone for this statement; a row trimming just
  -- moved has expired_at = now() and stays.
  with gone as (
    select x.room_id
      from watchium_private.room_events_expired as x
     where x.expired_at < pg_catalog.now() - v_retention
       and not exists (select from public.rooms as r where r.room_id = x.room_id)
       and not exists (select from watchium_private.room_events as e where e.room_id = x.room_id)
     limit 1000
       for update of x skip locked
  ), pruned as (
    delete from watchium_private.room_events_expired as x
     using gone as g
     where x.room_id = g.room_id
    returning 1
  )
  select pg_catalog.count(*) into v_pruned from pruned;

  return pg_catalog.jsonb_build_object(
    'deleted', v_deleted, 'retention', v_retention::text, 'positions_pruned', v_pruned);
end;
$$;
comment on function watchium_private.expire_room_events() is
  'Deletes room events older than the room_event_retention setting (default 1 hour), records per room the highest position deleted (room_events_expired), and deletes at most 1000 such rows of rooms that no longer exist, have no event left and were not trimmed for room_event_retention; returns {"deleted": n, "retention": "...", "positions_pruned": n}. Run by maintenance.';

comment on table watchium_private.room_events_expired is
  'Per room, the highest position (xact_id, event_id) deleted from room_events by expire_room_events: a listener resuming from a lower position has lost events and is told so (read_room_events returns "expired"). One row per room whose events were trimmed; kept while the room exists, deleted by expire_room_events once the room is gone, none of its events is left and the row was not moved for room_event_retention.';
