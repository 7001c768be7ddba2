"""The properties Supabase's database linter (splinter) checks, as catalog queries of our own.

Each test names the lint it mirrors. They run against a database at head with Supabase's default
grants installed (the test template), so they hold where our users run the package.
"""

from __future__ import annotations

import re

import pytest

OUR_SCHEMAS = ("public", "watchium_private", "watchium_rpc")
# The schemas the Data API exposes (PostgREST's db_schemas): what the advisor's function lints
# look at. watchium_rpc holds the security definer bodies of the RPC functions and is not exposed.
EXPOSED_SCHEMAS = ("public",)
RPC_SCHEMA = "watchium_rpc"

# Objects of our schemas that belong to an extension are not ours to lint.
NOT_EXTENSION = """
  not exists (select from pg_catalog.pg_depend d
              where d.objid = {oid} and d.deptype = 'e')
"""


def find_every_function_pins_search_path(conn):
    """function_search_path_mutable: every function sets search_path."""
    rows = conn.execute(
        f"""
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s)
          and {NOT_EXTENSION.format(oid="p.oid")}
          and not exists (
            select from unnest(coalesce(p.proconfig, '{{}}')) as c where c like 'search_path=%%'
          )
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    return rows


PINNED_SEARCH_PATH = "search_path=pg_catalog, pg_temp"


def find_search_path_is_pinned(conn):
    """Our own rule, stricter than the lint: search_path is exactly `pg_catalog, pg_temp`.

    An empty path is not enough: when pg_temp is not listed, PostgreSQL searches it *first* for
    type and relation names, so a caller's temporary domain named `text` would run its CHECK as
    the function's owner. Listing pg_temp last closes that; every name is also qualified.
    """
    rows = conn.execute(
        """
        select p.oid::regprocedure::text, c
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace,
        unnest(coalesce(p.proconfig, '{}')) as c
        where n.nspname = any(%s) and c like 'search_path=%%' and c <> %s
        """,
        (list(OUR_SCHEMAS), PINNED_SEARCH_PATH),
    ).fetchall()
    return rows


def find_no_security_definer_function_executable_by_anon(conn):
    """anon_security_definer_function_executable."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef
          and pg_catalog.has_function_privilege('anon', p.oid, 'execute')
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    return rows


def find_no_security_definer_function_executable_by_authenticated_in_exposed_schema(conn):
    """authenticated_security_definer_function_executable."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef
          and pg_catalog.has_function_privilege('authenticated', p.oid, 'execute')
        """,
        (list(EXPOSED_SCHEMAS),),
    ).fetchall()
    return rows


def find_no_security_definer_function_in_exposed_schema(conn):
    """Our rule, stricter than the lints: nothing in an exposed schema is security definer, even
    when no API role may execute it today (one grant away from the lint). Definer rights live in
    the bodies in watchium_rpc, behind security invoker entry points."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef
          and not exists (select from pg_catalog.pg_depend d
                          where d.objid = p.oid and d.deptype = 'e')
        """,
        (list(EXPOSED_SCHEMAS),),
    ).fetchall()
    return rows


def find_every_rpc_body_is_security_definer_with_pinned_search_path(conn):
    """Every function in watchium_rpc is a security definer body with search_path pinned."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = %s
          and (not p.prosecdef or not coalesce(%s = any(p.proconfig), false))
        """,
        (RPC_SCHEMA, PINNED_SEARCH_PATH),
    ).fetchall()
    return rows


def find_every_public_rpc_has_a_body(conn):
    """Every function in public is an entry point with a body of the same name and signature in
    watchium_rpc that it calls, and every body has its entry point."""
    rows = conn.execute(
        """
        select coalesce(f.oid::regprocedure::text, b.oid::regprocedure::text)
        from (select p.* from pg_catalog.pg_proc p
              where p.pronamespace = 'public'::regnamespace
                and not exists (select from pg_catalog.pg_depend d
                                where d.objid = p.oid and d.deptype = 'e')) as f
        full join (select p.* from pg_catalog.pg_proc p
                   where p.pronamespace = %s::regnamespace) as b
          on b.proname = f.proname and b.proargtypes = f.proargtypes
        where f.oid is null or b.oid is null
           or pg_catalog.strpos(f.prosrc, %s || '.' || f.proname || '(') = 0
        """,
        (RPC_SCHEMA, RPC_SCHEMA),
    ).fetchall()
    return rows


def test_every_security_definer_function_says_why(conn):
    """Our rule: each security definer function carries a `-- why` comment in its body."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text, pg_catalog.pg_get_functiondef(p.oid)
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    missing = [name for name, ddl in rows if not re.search(r"SECURITY DEFINER", ddl)]
    assert missing == []
    # pg_get_functiondef drops comments outside the body; the reason is kept as the
    # function's catalog comment, which must mention why definer rights are needed.
    undocumented = conn.execute(
        """
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef
          and pg_catalog.obj_description(p.oid, 'pg_proc') is null
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    assert undocumented == [], undocumented


IDENTITY_CALLS = (
    "watchium_private.current_user_id()",
    "watchium_private.my_room_ids()",
    "auth.uid()",
    "auth.jwt()",
    "auth.role()",
    "current_setting(",
)


def find_policies_read_identity_once_per_statement(conn):
    """auth_rls_initplan: identity functions are wrapped in (select ...) in every policy."""
    rows = conn.execute(
        """
        select schemaname || '.' || tablename || ' ' || policyname,
               coalesce(qual, '') || ' ' || coalesce(with_check, '')
        from pg_catalog.pg_policies
        where schemaname = any(%s) or schemaname = 'realtime'
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    offenders = []
    for name, expr in rows:
        for call in IDENTITY_CALLS:
            for match in re.finditer(re.escape(call), expr):
                before = expr[: match.start()].rstrip()
                if not before.upper().endswith("SELECT"):
                    offenders.append((name, call))
    return offenders


def find_no_always_true_write_policy(conn):
    """rls_policy_always_true: no INSERT/UPDATE/DELETE/ALL policy that admits every row."""
    rows = conn.execute(
        """
        select schemaname || '.' || tablename || ' ' || policyname
        from pg_catalog.pg_policies
        where (schemaname = any(%s) or schemaname = 'realtime')
          and cmd in ('INSERT', 'UPDATE', 'DELETE', 'ALL')
          and (coalesce(qual, 'true') = 'true' or coalesce(with_check, 'true') = 'true')
          and not (cmd = 'DELETE' and qual is not null and qual <> 'true')
          and not (cmd = 'INSERT' and with_check is not null and with_check <> 'true')
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    return rows


def find_no_two_permissive_policies_for_one_role_and_action(conn):
    """multiple_permissive_policies."""
    rows = conn.execute(
        """
        with expanded as (
          select p.polrelid::regclass::text as tbl,
                 case when r = 0 then 'public' else pg_catalog.pg_get_userbyid(r) end as role,
                 a.action
          from pg_catalog.pg_policy p
          cross join lateral unnest(p.polroles) as r
          cross join lateral unnest(case p.polcmd
              when '*' then array['r', 'a', 'w', 'd'] else array[p.polcmd::text] end) as a(action)
          where p.polpermissive
        )
        select tbl, role, action, count(*)
        from expanded
        group by tbl, role, action
        having count(*) > 1
        """
    ).fetchall()
    return rows


def find_no_duplicate_index(conn):
    """duplicate_index."""
    rows = conn.execute(
        """
        select i.indrelid::regclass::text, array_agg(i.indexrelid::regclass::text)
        from pg_catalog.pg_index i
        join pg_catalog.pg_class c on c.oid = i.indrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s)
        group by i.indrelid, i.indkey::text, i.indclass::text,
                 coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''),
                 coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')
        having count(*) > 1
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    return rows


def find_rls_enabled_on_every_table(conn):
    """rls_disabled_in_public — and in our private schema too."""
    rows = conn.execute(
        """
        select c.oid::regclass::text
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind in ('r', 'p')
          and not c.relrowsecurity
          and c.relname <> 'alembic_version'
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    return rows


PUBLIC_TABLES = {
    "rooms",
    "room_members",
    "comments",
    "sync_states",
    "sync_states_default",
    "sync_records",
    "room_permissions",
    "room_queue",
}


def test_no_internal_table_in_public(conn):
    """Internal tables (version table, counters, secrets, presence) live in watchium_private."""
    rows = conn.execute(
        """
        select c.relname from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
        """
    ).fetchall()
    names = {name for (name,) in rows}
    extra = {n for n in names - PUBLIC_TABLES if not re.fullmatch(r"sync_states_p\d{10}", n)}
    assert extra == set(), f"unexpected relations in public: {extra}"
    version = conn.execute(
        "select table_schema from information_schema.tables where table_name = 'alembic_version'"
    ).fetchall()
    assert version == [("watchium_private",)]


def find_no_api_role_can_write_any_table_directly(conn):
    """Clients write only through functions: no INSERT/UPDATE/DELETE/TRUNCATE for API roles."""
    rows = conn.execute(
        """
        select c.oid::regclass::text, r.rolname, priv
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        cross join (values ('anon'), ('authenticated'), ('service_role')) as r(rolname)
        cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) as p(priv)
        where n.nspname = any(%s) and c.relkind in ('r', 'p')
          and pg_catalog.has_table_privilege(r.rolname, c.oid, p.priv)
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    return rows


def find_private_schema_tables_unreadable_by_api_roles(conn):
    rows = conn.execute(
        """
        select c.oid::regclass::text, r.rolname
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        cross join (values ('anon'), ('authenticated'), ('service_role')) as r(rolname)
        where n.nspname = 'watchium_private' and c.relkind in ('r', 'p', 'v', 'm')
          and pg_catalog.has_table_privilege(r.rolname, c.oid, 'SELECT')
        """
    ).fetchall()
    return rows


CHECKS = {name[len("find_"):]: fn for name, fn in dict(globals()).items() if name.startswith("find_")}


def test_schema_passes_every_check(conn):
    assert conn.execute("select count(*) from pg_catalog.pg_policies").fetchone()[0] > 0
    failures = {name: rows for name, rows in ((n, fn(conn)) for n, fn in CHECKS.items()) if rows}
    assert failures == {}


# Each check is shown to fail: one violation per check, made in this test's own database.
VIOLATIONS = {
    "every_function_pins_search_path": "create function public.bad() returns int language sql as 'select 1'",
    "search_path_is_pinned": "create function public.bad() returns int language sql set search_path = '' as 'select 1'",
    "no_security_definer_function_executable_by_anon": "create function public.bad() returns int language sql security definer set search_path = pg_catalog, pg_temp as 'select 1'",
    "no_security_definer_function_executable_by_authenticated_in_exposed_schema": "create function public.bad() returns int language sql security definer set search_path = pg_catalog, pg_temp as 'select 1'; revoke all on function public.bad() from public, anon; grant execute on function public.bad() to authenticated",
    "no_security_definer_function_in_exposed_schema": "create function public.bad() returns int language sql security definer set search_path = pg_catalog, pg_temp as 'select 1'; revoke all on function public.bad() from public, anon, authenticated",
    "every_rpc_body_is_security_definer_with_pinned_search_path": "alter function watchium_rpc.leave_room(text) security invoker",
    "every_public_rpc_has_a_body": "create function public.bad() returns int language plpgsql set search_path = pg_catalog, pg_temp as $$ begin return 1; end $$",
    "policies_read_identity_once_per_statement": "create policy bad on public.comments for select to anon using (user_id = watchium_private.current_user_id())",
    "no_always_true_write_policy": "create policy bad on public.comments for insert to authenticated with check (true)",
    "no_two_permissive_policies_for_one_role_and_action": "create policy bad on public.rooms for select to anon using (true)",
    "no_duplicate_index": "create index bad on public.comments (parent_id) where parent_id is not null",
    "rls_enabled_on_every_table": "create table public.bad (id int); alter table public.bad disable row level security",
    "no_api_role_can_write_any_table_directly": "grant insert on public.rooms to authenticated",
    "private_schema_tables_unreadable_by_api_roles": "grant select on watchium_private.room_secrets to anon",
}


def test_every_check_has_a_violation():
    assert set(VIOLATIONS) == set(CHECKS)


@pytest.mark.parametrize("check", sorted(VIOLATIONS))
def test_check_detects_its_violation(conn, check):
    assert CHECKS[check](conn) == []
    conn.execute(VIOLATIONS[check])
    assert CHECKS[check](conn) != []
