"""Public RPC functions are security invoker entry points over security definer bodies.

Supabase's Security Advisor warns about every security definer function in an exposed schema that
anon or authenticated may execute. So each function in public is a security invoker PL/pgSQL
function that passes its arguments to the body of the same name and signature in watchium_rpc
(not exposed by the Data API), which runs with the owner's rights and checks everything. The
entry point keeps the API: same arguments and defaults, result, volatility and errors. Calling a
body directly gives nothing the entry point does not.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db.testing import as_user, make_room

PAIRS = """
select f.oid::regprocedure::text as facade, b.oid::regprocedure::text as body,
       f.prosecdef as facade_definer, b.prosecdef as body_definer,
       (select l.lanname from pg_catalog.pg_language l where l.oid = f.prolang) as facade_language,
       f.proconfig as facade_config, b.proconfig as body_config,
       pg_catalog.pg_get_function_arguments(f.oid) = pg_catalog.pg_get_function_arguments(b.oid)
         as same_arguments,
       pg_catalog.pg_get_function_result(f.oid) = pg_catalog.pg_get_function_result(b.oid)
         as same_result,
       (f.provolatile, f.proisstrict, f.proretset, f.proparallel)
         = (b.provolatile, b.proisstrict, b.proretset, b.proparallel) as same_kind
from pg_catalog.pg_proc f
join pg_catalog.pg_proc b
  on b.pronamespace = 'watchium_rpc'::regnamespace
 and b.proname = f.proname and b.proargtypes = f.proargtypes
where f.pronamespace = 'public'::regnamespace
order by 1
"""


def pairs(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(PAIRS)
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_every_public_function_is_an_invoker_entry_point_over_a_body(conn):
    found = pairs(conn)
    public = conn.execute(
        "select count(*) from pg_catalog.pg_proc where pronamespace = 'public'::regnamespace"
    ).fetchone()[0]
    assert len(found) == public > 20
    for pair in found:
        assert not pair["facade_definer"] and pair["body_definer"], pair
        assert pair["facade_language"] == "plpgsql", pair  # its plan is cached per session
        # search_path pinned first; other function settings (lock_timeout) live here too, so
        # that they hold for the whole call
        assert pair["facade_config"][0] == "search_path=pg_catalog, pg_temp", pair
        assert pair["body_config"] == ["search_path=pg_catalog, pg_temp"], pair
        assert pair["same_arguments"] and pair["same_result"] and pair["same_kind"], pair


def test_entry_point_only_calls_its_body(conn):
    """The entry point's whole body is one call of its own body: no logic to drift."""
    rows = conn.execute(
        """
        select p.proname, pg_catalog.regexp_replace(p.prosrc, '\\s+', ' ', 'g')
        from pg_catalog.pg_proc p where p.pronamespace = 'public'::regnamespace
        """
    ).fetchall()
    for name, src in rows:
        call = f"watchium_rpc.{name}("
        assert src.count("watchium_rpc.") == 1 and call in src, (name, src)
        statements = [s.strip() for s in src.split(";") if s.strip()]
        assert statements[0].startswith("begin ") and statements[-1] == "end", (name, src)
        assert len(statements) == 2, (name, src)


@pytest.fixture
def room(conn):
    return make_room(conn, host="host", members=["member"], private=True)


def outcome(conn: psycopg.Connection[Any], sql: str, args: tuple[Any, ...], **who: Any) -> Any:
    """The result of sql, or (SQLSTATE, message) of the error it raises, as a caller."""
    user = who.pop("user", None)
    try:
        with as_user(conn, user, **who) as c:
            return ("ok", c.execute(sql, args).fetchall())
    except psycopg.Error as e:
        return (e.sqlstate, e.diag.message_primary, e.diag.message_hint)


@pytest.mark.parametrize(
    ("sql", "args", "who"),
    [
        # bad input
        ("select {schema}.create_room('', 'a', 'A', 1, 'https://x.y/v', 'U')", (), {"user": "u1"}),
        ("select {schema}.record_heartbeat(%s, 'NaN', true)", ("ROOM",), {"user": "member"}),
        ("select {schema}.get_comments('a1', 1, null, %s, 10)", ("-999.x",), {"user": "u1"}),
        # authority
        ("select {schema}.kick_member(%s, 'host')", ("ROOM",), {"user": "member"}),
        ("select {schema}.get_room_access_key(%s)", ("ROOM",), {"user": "stranger"}),
        ("select * from {schema}.record_heartbeats(%s, '{{member}}', '{{1}}', '{{t}}')", ("ROOM",), {"user": "member"}),
        # results
        ("select {schema}.get_room(%s)", ("ROOM",), {"user": "member"}),
        ("select {schema}.list_public_rooms(null, 10, null)", (), {"user": "u1"}),
        ("select {schema}.get_room_access_key(%s)", ("ROOM",), {"user": "host"}),
    ],
)  # fmt: skip
def test_body_called_directly_answers_as_the_entry_point(conn, room, sql, args, who):
    """Same result or same error (SQLSTATE, message, hint) through the entry point and directly:
    the entry point adds no check, so a caller who can reach a body gains nothing."""
    args = tuple(room.room_id if a == "ROOM" else a for a in args)
    through = outcome(conn, sql.format(schema="public"), args, **who)
    direct = outcome(conn, sql.format(schema="watchium_rpc"), args, **who)
    assert through == direct


@pytest.mark.parametrize(
    ("sql", "role"),
    [
        ("select watchium_rpc.leave_room('x')", "anon"),
        ("select watchium_rpc.maintain()", "authenticated"),
        ("select watchium_rpc.realtime_health()", "authenticated"),
    ],
)
def test_api_roles_cannot_call_bodies_they_cannot_call_through_public(conn, sql, role):
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, "u1", role=role) as c:
        c.execute(sql)
    public_sql = sql.replace("watchium_rpc.", "public.")
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, "u1", role=role) as c:
        c.execute(public_sql)
