-- =============================================================================
-- 0001 schemas and roles
--
-- public            what clients may read (through RLS) and call (RPC functions)
-- watchium_private  internals: secrets, counters, helpers used by policies, and
--                   the migration version table. Not exposed by the Data API.
--
-- Supabase has the roles anon, authenticated and service_role. On plain
-- PostgreSQL they are created here (NOLOGIN), so the same grants and policies
-- apply: an application grants `authenticated` to its login role and switches
-- to it per transaction (see README, "Plain PostgreSQL").
-- =============================================================================

create schema if not exists watchium_private;
comment on schema watchium_private is
  'watchium-db internals: secrets, counters, security-definer helpers and the migration version table. Not part of the API; never expose it through PostgREST.';
revoke all on schema watchium_private from public;

do $roles$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$roles$;

-- Policies call helpers in the private schema with the caller's privileges,
-- so the API roles may look names up there; each object grants its own rights.
grant usage on schema watchium_private to anon, authenticated, service_role;
