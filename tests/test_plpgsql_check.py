"""plpgsql_check over every PL/pgSQL function of the schema at head.

The extension is a test tool, not part of the schema: it is created in each test's own copy of
the template. Trigger functions are checked once per table that has a trigger calling them,
since NEW and OLD take that table's row type.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

SCHEMAS = ("public", "watchium_private", "watchium_rpc")

FUNCTIONS = """
select p.oid::regprocedure::text as name, p.oid, t.relid, t.newtable, t.oldtable
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_language l on l.oid = p.prolang
  left join lateral (
    select pg_catalog.quote_ident(rn.nspname) || '.' || pg_catalog.quote_ident(rc.relname) as relid,
           tg.tgnewtable::text as newtable, tg.tgoldtable::text as oldtable
      from pg_catalog.pg_trigger tg
      join pg_catalog.pg_class rc on rc.oid = tg.tgrelid
      join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace
     where tg.tgfoid = p.oid and not tg.tgisinternal and tg.tgparentid = 0
  ) t on p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype
 where l.lanname = 'plpgsql' and n.nspname = any(%s)
 order by 1, 3
"""

CHECK = """
select level, message, detail, hint, lineno, statement
  from plpgsql_check_function_tb(%s::oid, coalesce(%s::regclass, 0::oid),
                                 newtable := %s, oldtable := %s,
                                 fatal_errors := false, extra_warnings := true,
                                 performance_warnings := false)
"""


MISSING = (
    "the plpgsql_check extension is not installed on the test server; install it "
    "(Debian/Ubuntu: apt-get install postgresql-15-plpgsql-check) — .ci/run does"
)
_reported_missing: list[bool] = []


def require_plpgsql_check(conn: psycopg.Connection[Any]) -> None:
    """Create the extension. When the server lacks it, the first test of this module fails
    with how to install it and the others say they depend on that: one failure, not one each."""
    available = conn.execute(
        "select 1 from pg_catalog.pg_available_extensions where name = 'plpgsql_check'"
    ).fetchone()
    if not available:
        if _reported_missing:
            pytest.skip("needs plpgsql_check, which is missing (see the failure above)")
        _reported_missing.append(True)
        pytest.fail(MISSING, pytrace=False)
    conn.execute("create extension if not exists plpgsql_check")


def check_function(
    conn: psycopg.Connection[Any],
    oid: int,
    relid: str | None,
    newtable: str | None = None,
    oldtable: str | None = None,
) -> list[tuple[Any, ...]]:
    """Check one function; triggers with transition tables get their names."""
    return conn.execute(CHECK, (oid, relid, newtable, oldtable)).fetchall()


def describe(name: str, relid: str | None, rows: list[tuple[Any, ...]]) -> list[str]:
    where = f"{name}" + (f" on {relid}" if relid else "")
    return [
        f"{where}: line {lineno}: {level}: {message}"
        + (f" ({detail})" if detail else "")
        + (f" hint: {hint}" if hint else "")
        for level, message, detail, hint, lineno, _statement in rows
    ]


def is_problem(row: tuple[Any, ...]) -> bool:
    return str(row[0]).startswith(("error", "warning"))


def test_every_plpgsql_function_passes_plpgsql_check(watchium_conn):
    require_plpgsql_check(watchium_conn)
    targets = watchium_conn.execute(FUNCTIONS, (list(SCHEMAS),)).fetchall()
    assert targets, "no PL/pgSQL function found: the query, not the schema, is wrong"
    messages: list[str] = []
    problems = 0
    unattached = []
    for name, oid, relid, newtable, oldtable in targets:
        is_trigger = watchium_conn.execute(
            "select prorettype = 'pg_catalog.trigger'::pg_catalog.regtype from pg_catalog.pg_proc where oid = %s",
            (oid,),
        ).fetchone()
        if is_trigger and is_trigger[0] and relid is None:
            unattached.append(name)  # no table gives NEW/OLD a row type to check against
            continue
        rows = check_function(
            watchium_conn, oid, None if relid is None else str(relid), newtable, oldtable
        )
        messages += describe(name, None if relid is None else str(relid), rows)
        problems += sum(1 for row in rows if is_problem(row))
    assert problems == 0, "plpgsql_check:\n" + "\n".join(messages)
    assert not unattached, f"trigger functions no trigger uses (dead code?): {unattached}"


def test_trigger_functions_are_checked_once_per_table(watchium_conn):
    rows = watchium_conn.execute(FUNCTIONS, (list(SCHEMAS),)).fetchall()
    touch = sorted(str(row[2]) for row in rows if row[0].endswith("tg__touch_updated_at()"))
    assert touch == ["public.comments", "public.room_members", "public.rooms"]


def test_plpgsql_check_reports_a_broken_function(watchium_conn):
    require_plpgsql_check(watchium_conn)
    watchium_conn.execute(
        """
        create function public.broken_for_the_checker(p_room_id text) returns integer
        language plpgsql set search_path = pg_catalog, pg_temp as $$
        declare
          unused integer;
        begin
          return (select r.no_such_column from public.rooms r where r.room_id = p_room_id);
        end;
        $$
        """
    )
    oid = watchium_conn.execute(
        "select 'public.broken_for_the_checker(text)'::regprocedure::oid"
    ).fetchone()
    assert oid is not None
    rows = check_function(watchium_conn, oid[0], None)
    text = "\n".join(describe("broken_for_the_checker", None, rows))
    assert any(str(r[0]) == "error" and "no_such_column" in str(r[1]) for r in rows), text
    assert any(str(r[0]).startswith("warning") and "unused" in str(r[1]) for r in rows), text


def test_plpgsql_check_reports_a_trigger_function_against_its_table(watchium_conn):
    require_plpgsql_check(watchium_conn)
    watchium_conn.execute(
        """
        create function public.tg_broken_for_the_checker() returns trigger
        language plpgsql set search_path = pg_catalog, pg_temp as $$
        begin
          new.no_such_column := 1;
          return new;
        end;
        $$;
        create trigger broken_for_the_checker before update on public.rooms
          for each row execute function public.tg_broken_for_the_checker();
        """
    )
    rows = [r for r in watchium_conn.execute(FUNCTIONS, (["public"],)).fetchall() if "tg_broken" in r[0]]
    assert [str(r[2]) for r in rows] == ["public.rooms"]
    found = check_function(watchium_conn, rows[0][1], "public.rooms")
    assert any(str(r[0]) == "error" for r in found), found


@pytest.mark.parametrize("schema", SCHEMAS)
def test_checked_schemas_exist(watchium_conn, schema):
    assert watchium_conn.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone()
