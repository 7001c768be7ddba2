-- =============================================================================
-- 0014 member reads
--
-- watchium_private.my_room_ids(), the membership helper of every member
-- policy, becomes PL/pgSQL. As a SQL function with a SET clause it could not
-- be inlined and its query was planned again on every call: once per policy
-- use, so three times for a member reading a room's members and its sync
-- records (the sync_records view applies the sync_states policy in both of
-- its branches). PL/pgSQL keeps the plan for the session. Same result, same
-- rights (security definer, stable), same callers.
-- Measured in-server (pg_stat_statements, 200 rooms read as a member and as
-- service_role, two statements a transaction): 941-1058 us a member
-- transaction before, 655-685 us after; service_role 264-323 us both times.
-- =============================================================================
set local lock_timeout = '5s';
set local statement_timeout = '60s';

-- -----------------------------------------------------------------------------
-- watchium_private.my_room_ids(): the rooms the caller is a member of.
--
-- The one membership helper of the policies. Security definer: it must read
-- room_members without that table's own policy (which calls it: recursion).
-- Policies use it as `room_id in (select watchium_private.my_room_ids())`, a
-- hashed subplan evaluated once per statement: identity is read once, and
-- the set comes from room_members_user_id_idx. PL/pgSQL, not SQL: a SQL
-- function with a SET clause is planned again on every call.
-- -----------------------------------------------------------------------------
create or replace function watchium_private.my_room_ids()
returns setof text
language plpgsql
stable
security definer  -- reads room_members bypassing its RLS (its policy calls this function)
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select m.room_id
    from public.room_members as m
    where m.user_id = watchium_private.current_user_id();
end;
$$;
