-- =============================================================================
-- 0009 room roles
--
-- Every member has a role: host, co_host, member or viewer (ranked in that
-- order, host highest). There is still exactly one host per non-empty room,
-- the single clock authority: room_members.is_host stays the flag the one-host
-- index, the host triggers and every existing function use, and role = 'host'
-- exactly when is_host (room_members_role_host_check). A BEFORE trigger keeps
-- the two together for every writer: a member gaining the flag gets role
-- 'host', the host losing it becomes 'member' (what a former host is today).
-- Nothing can make a member host through the role column alone: the
-- constraint refuses role = 'host' without the flag.
--
-- This revision changes public.room_members alone (the only busy table it
-- locks); the permission map that reads the role follows in 0010.
--
-- It also adds watchium_private.await_older_transactions(), which the
-- downgrades of later revisions call before dropping a helper (see there).
-- =============================================================================

-- -----------------------------------------------------------------------------
-- room_members.role
-- -----------------------------------------------------------------------------
-- A constant default: no table rewrite (PostgreSQL 11+ stores it in the catalog).
alter table public.room_members
  add column role text not null default 'member';
comment on column public.room_members.role is
  'host, co_host, member or viewer (rank in that order). role = ''host'' exactly when is_host (room_members_role_host_check); a member gaining is_host becomes host, the host losing it becomes member (trigger _050_sync_role). Changed by set_member_role; never ''host'' that way (transfer_host).';

-- The current hosts (one row per non-empty room). Only these rows change; the
-- update fires no host trigger (_200_sync_room_host watches is_host and username).
update public.room_members set role = 'host' where is_host and role <> 'host';

-- NOT VALID then VALIDATE in one transaction: the ACCESS EXCLUSIVE lock of
-- the ADD is held until commit, so the validating scan (one row per member)
-- blocks readers for its length; lock_timeout bounds the wait for the lock.
alter table public.room_members
  add constraint room_members_role_check
  check (role in ('host', 'co_host', 'member', 'viewer')) not valid;
alter table public.room_members
  add constraint room_members_role_host_check
  check ((role = 'host') = is_host) not valid;
-- squawk-ignore constraint-missing-not-valid
alter table public.room_members validate constraint room_members_role_check;
-- squawk-ignore constraint-missing-not-valid
alter table public.room_members validate constraint room_members_role_host_check;

-- -----------------------------------------------------------------------------
-- tg_room_members__sync_role: role follows is_host, for every writer (the
-- join and succession triggers, transfer_host, forget_user, a DBA). Runs
-- before the row is written, so the constraint sees the final pair.
-- -----------------------------------------------------------------------------
create function watchium_private.tg_room_members__sync_role()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if new.is_host then
    new.role := 'host';
  elsif tg_op = 'UPDATE' and old.is_host and new.role = 'host' then
    -- The host handing host on (or removed from it) becomes an ordinary member.
    new.role := 'member';
  end if;
  return new;
end;
$$;
comment on function watchium_private.tg_room_members__sync_role() is
  'Trigger function: a member flagged is_host gets role host; the host losing the flag becomes member. A non-host given role host directly is refused by room_members_role_host_check.';
revoke all on function watchium_private.tg_room_members__sync_role() from public;

create trigger _050_sync_role
  before insert or update of is_host, role on public.room_members
  for each row execute function watchium_private.tg_room_members__sync_role();
comment on trigger _050_sync_role on public.room_members is
  'role = host exactly for the is_host member; the host losing the flag becomes member.';

-- -----------------------------------------------------------------------------
-- watchium_private.await_older_transactions(): for downgrades. Waits until
-- every transaction of this database that was running when it was called has
-- ended, then returns how many there were. A downgrade that drops a helper
-- calls it first: an earlier revision's downgrade has put back functions that
-- no longer call the helper and committed, but a call that began before that
-- commit still runs the newer body and may yet call the helper. Gives up with
-- 55P03 ("lock timeout") after the session's lock_timeout (1 minute when it
-- is 0), like a migration that cannot get its lock: retry later. Reads
-- pg_locks (every transaction holds a lock on its virtual transaction id);
-- holds no lock while it waits.
-- -----------------------------------------------------------------------------
create function watchium_private.await_older_transactions()
returns integer
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_older    text[];
  v_deadline timestamptz := pg_catalog.clock_timestamp()
    + coalesce(nullif(pg_catalog.current_setting('lock_timeout'), '0')::interval,
               interval '1 minute');
begin
  select coalesce(pg_catalog.array_agg(l.virtualxid), '{}')
    into v_older
    from pg_catalog.pg_locks as l
    join pg_catalog.pg_stat_activity as a on a.pid = l.pid
   where l.locktype = 'virtualxid'
     and l.granted
     and l.pid <> pg_catalog.pg_backend_pid()
     and a.datname = pg_catalog.current_database();
  while exists (
    select from pg_catalog.pg_locks as l
    where l.locktype = 'virtualxid' and l.granted and l.virtualxid = any(v_older)
  ) loop
    if pg_catalog.clock_timestamp() > v_deadline then
      raise exception 'lock timeout: transactions that began before this migration are still running'
        using errcode = '55P03',
              hint = 'A downgrade waits for calls that may still run the functions it removes. Retry when they have ended (a session idle in transaction holds it up).';
    end if;
    perform pg_catalog.pg_sleep(0.01);
  end loop;
  return pg_catalog.cardinality(v_older);
end;
$$;
comment on function watchium_private.await_older_transactions() is
  'For downgrades: waits until every transaction of this database running at the call has ended (55P03 after lock_timeout, 1 minute when 0); returns how many there were. Holds no lock while waiting. Internal.';
revoke all on function watchium_private.await_older_transactions() from public;
