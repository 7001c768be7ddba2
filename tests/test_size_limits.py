"""Sizes are checked first: every public function taking text, jsonb or arrays refuses an
oversized argument with 22001 naming it, before any other work.

Driven from pg_proc: every argument of every function in ``public`` whose type is text, jsonb or
an array is called with a value far over any cap (plausible values for the other arguments),
so a new RPC without a size check fails here. "First" means before the argument itself is read:
other arguments may be checked before it (each within its own cap).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from watchium_db.testing import as_user

BIG_TEXT = "x" * 2_000_000  # 2 MB
CHECKED_TYPES = ("text", "jsonb")

# Plausible values for the arguments not under test, so that nothing else fails first.
PLAUSIBLE: dict[str, Any] = {
    "text": "x",
    "jsonb": "{}",
    "integer": 1,
    "bigint": 1,
    "numeric": 0,
    "boolean": False,
    "text[]": ["x"],
    "numeric[]": [0],
    "boolean[]": [False],
    "integer[]": [1],
}


def _oversized(type_name: str) -> Any:
    if type_name == "text":
        return BIG_TEXT
    if type_name == "jsonb":
        return '{"a": "' + BIG_TEXT + '"}'
    if type_name == "text[]":
        return ["x" * 1000] * 2000
    if type_name == "numeric[]":
        return [1] * 200_000
    if type_name == "boolean[]":
        return [True] * 200_000
    if type_name == "integer[]":
        return [1] * 200_000
    raise AssertionError(f"no oversized value for {type_name}: add one")


def _public_arguments(conn: psycopg.Connection[Any]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(function, argument under test, [(name, type) of every input argument])."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text, p.proname,
               array_agg(a.name order by a.ord), array_agg(format_type(a.typ, null) order by a.ord)
        from pg_proc as p
        cross join lateral unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[])
          with ordinality as a(name, typ, ord)
        where p.pronamespace = 'public'::regnamespace
          and not exists (select from pg_depend as d where d.objid = p.oid and d.deptype = 'e')
        group by p.oid, p.proname
        order by p.proname
        """
    ).fetchall()
    cases = []
    for _signature, name, arg_names, arg_types in rows:
        args = list(zip(arg_names, arg_types, strict=True))
        for arg, type_name in args:
            if type_name in CHECKED_TYPES or type_name.endswith("[]"):
                cases.append((name, arg, args))
    return cases


def test_every_text_jsonb_and_array_argument_is_size_checked_first(conn):
    cases = _public_arguments(conn)
    # The catalog query finds the RPCs (guards against a query that silently finds nothing).
    names = {name for name, _, _ in cases}
    assert {"create_room", "post_comment", "record_heartbeats", "broadcast_to_room"} <= names
    failures = []
    for name, arg, args in cases:
        values = [
            _oversized(type_name)
            if arg_name == arg
            else "https://example.com/x"
            if arg_name.endswith("_url")
            else PLAUSIBLE[type_name]
            for arg_name, type_name in args
        ]
        call = sql.SQL("select public.{}({})").format(
            sql.Identifier(name),
            sql.SQL(", ").join(
                sql.SQL("{} => {}::{}").format(
                    sql.Identifier(arg_name), sql.Placeholder(), sql.SQL(type_name)
                )
                for arg_name, type_name in args
            ),
        )
        granted = conn.execute(
            "select has_function_privilege('authenticated', %s::regproc, 'execute')",
            (f"public.{name}",),
        ).fetchone()
        role = "authenticated" if granted and granted[0] else "service_role"
        try:
            with as_user(conn, "alice", role=role) as c:
                c.execute(call, values)
        except psycopg.Error as exc:
            if exc.sqlstate == "22001" and arg in str(exc) and "bytes" in str(exc):
                continue
            failures.append(f"{name}({arg}): {exc.sqlstate} {str(exc)[:120]}")
            continue
        failures.append(f"{name}({arg}): accepted an oversized value")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (
            "select public.create_room(%s, 'a1', 'Anime', 1, 'https://example.com/v', 'Alice')",
            "p_title",
        ),
        ("select public.join_room('abcdefghij', %s, 'Alice')", "p_access_key"),
        ("select public.get_comments('a1', 1, null, %s)", "p_cursor"),
    ],
)
def test_text_over_four_bytes_a_character_is_refused_before_it_is_read(conn, call, argument):
    """The cap is 4 bytes per allowed character; one byte more is 22001, whereas a text within
    the cap but over the character limit gets the argument's own 22023."""
    caps = {"p_title": 800, "p_access_key": 24, "p_cursor": 160}
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(call, ("x" * (caps[argument] + 1),))
    assert exc.value.sqlstate == "22001" and argument in str(exc.value)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(call, ("x" * caps[argument],))
    assert exc.value.sqlstate in ("22023", "P0002") and "bytes" not in str(exc.value)
