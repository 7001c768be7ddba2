"""Smaller leaks and oddities a client could use: one test each.

Malformed cursors, private rooms answering like missing ones, comment ids, the reserved
username ``system`` and the text of system messages, comment moderation, the chat text rule,
anchors of made-up anime ids.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user

MALFORMED_CURSORS = [
    "-999999999999999999.a",
    "999999999999999999.a",
    "-999999999999999999.1",
    "253402300800000000.1",
    "garbage",
    "",
    "1.",
    ".1",
    "1.A",
    "1.1.1",
    "1e5.1",
    " 1.1",
]


def sqlstate_of(conn: psycopg.Connection[Any], user: str | None, sql: str, args: Any = ()) -> str:
    role = "anon" if user is None else "authenticated"
    try:
        with as_user(conn, user, role=role) as c:
            c.execute(sql, args)
    except psycopg.Error as exc:
        assert exc.sqlstate is not None
        return exc.sqlstate
    return "ok"


def cursor_functions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        """
        select p.proname from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and 'p_cursor' = any (p.proargnames)
        """
    ).fetchall()
    return {name for (name,) in rows}


CURSOR_CALLS = {
    "list_public_rooms": "select public.list_public_rooms(p_cursor => %s)",
    "get_comments": "select public.get_comments('a1', 1, p_cursor => %s)",
}


def test_every_cursor_function_is_listed(conn):
    assert cursor_functions(conn) == set(CURSOR_CALLS)


@pytest.mark.parametrize("function", sorted(CURSOR_CALLS))
@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
def test_malformed_cursor_is_22023(conn, function, cursor):
    assert sqlstate_of(conn, "u1", CURSOR_CALLS[function], (cursor,)) == "22023"


@pytest.mark.parametrize("function", sorted(CURSOR_CALLS))
def test_extreme_but_valid_cursor_pages(conn, function):
    """The oldest and newest cursors a timestamp can have still work (an empty page)."""
    for cursor in ("-62135596800000000.1", "253402300799999999.1"):
        assert sqlstate_of(conn, "u1", CURSOR_CALLS[function], (cursor,)) == "ok"
