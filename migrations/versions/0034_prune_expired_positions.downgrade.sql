-- =============================================================================
-- 0034 (downgrade): expire_room_events no longer prunes (0004's body).
-- =============================================================================
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
  return pg_catalog.jsonb_build_object('deleted', v_deleted, 'retention', v_retention::text);
end;
$$;
comment on function watchium_private.expire_room_events() is
  'Deletes room events older than the room_event_retention setting (default 1 hour) and records per room the highest position deleted (room_events_expired); returns {"deleted": n, "retention": "..."}. Run by maintenance.';

comment on table watchium_private.room_events_expired is
  'Per room, the highest position (xact_id, event_id) deleted from room_events by expire_room_events: a listener resuming from a lower position has lost events and is told so (read_room_events returns "expired"). One row per room whose events were ever trimmed.';
