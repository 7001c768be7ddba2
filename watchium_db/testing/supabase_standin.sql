-- A small stand-in for the parts of Supabase's platform that watchium-db relies on, for tests on
-- plain PostgreSQL. Written from Supabase's documented behaviour; installed only where the real
-- thing is absent (the caller checks for the auth schema first).
--
--   roles       anon, authenticated (NOLOGIN), service_role (NOLOGIN, BYPASSRLS)
--   auth.jwt()  the claims PostgREST and Realtime put in request.jwt.claims, as jsonb
--   auth.uid()  the sub claim as uuid (as on Supabase; watchium-db reads sub as text instead)
--   auth.role() the role claim
--   grants      Supabase's defaults: ALL on every table, function and sequence created in public
--               by the migrating role goes to anon, authenticated and service_role.

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

create schema auth;
grant usage on schema auth to anon, authenticated, service_role;

create function auth.jwt() returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

create function auth.uid() returns uuid
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select nullif(auth.jwt() ->> 'sub', '')::uuid
$$;

create function auth.role() returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select nullif(auth.jwt() ->> 'role', '')
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
