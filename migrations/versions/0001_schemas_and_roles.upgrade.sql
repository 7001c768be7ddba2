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

-- -----------------------------------------------------------------------------
-- watchium_rpc: the security definer bodies of the public RPC functions.
--
-- Each function clients call in public is a security invoker entry point that
-- passes its arguments to the body of the same name and signature here, which
-- runs with the owner's rights and does all the checking. This schema is not
-- in the Data API's exposed schemas: the API roles get USAGE (and EXECUTE on
-- exactly the bodies of the functions they may call) only because an invoker
-- function calls the body with the caller's rights. A role that can run SQL
-- gains nothing by calling a body directly: the entry point adds no check.
-- Never add this schema to the exposed schemas (db_schemas).
-- -----------------------------------------------------------------------------
create schema watchium_rpc;
comment on schema watchium_rpc is
  'watchium-db: the security definer bodies of the public RPC functions (each public entry point is security invoker and calls its body here). Not exposed by the Data API.';
revoke all on schema watchium_rpc from public;
grant usage on schema watchium_rpc to authenticated, service_role;
