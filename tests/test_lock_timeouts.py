"""Bounded lock waits: every RPC fails with 55P03 instead of queueing behind a stuck transaction.

The bound is the function's own ``lock_timeout`` (the ``rpc_lock_timeout`` setting, 2 s), so it
holds whatever role calls: the caller's session here allows a minute of waiting, and a call that
waited without bound would end in 57014 (statement timeout) instead of 55P03.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db import errors as werrors
from watchium_db.client import Client
from watchium_db.testing import as_user, make_room

EXEMPT = {"maintain", "realtime_health"}


@pytest.fixture
def holder(watchium_db_url: str):
    with psycopg.connect(watchium_db_url) as conn:  # not autocommit: holds its locks
        yield conn
        conn.rollback()


def _patient(conn: psycopg.Connection[Any]) -> None:
    conn.execute("set lock_timeout = 0")
    conn.execute("set statement_timeout = '60s'")


def test_every_rpc_carries_a_lock_timeout(conn):
    rows = conn.execute(
        """
        select p.proname, p.proconfig
        from pg_catalog.pg_proc p
        where p.pronamespace = 'public'::regnamespace
        order by 1
        """
    ).fetchall()
    missing = [
        name
        for name, config in rows
        if name not in EXEMPT and "lock_timeout=2s" not in (config or [])
    ]
    assert rows and missing == []


def test_control_on_a_locked_room_fails_with_55p03(conn, holder):
    room = make_room(conn, host="hana", members=["mika"])
    holder.execute("select 1 from public.rooms where room_id = %s for update", (room.room_id,))
    _patient(conn)
    with pytest.raises(errors.LockNotAvailable), as_user(conn, "hana") as c:
        c.execute("select public.change_playback_state(%s, true, 10)", (room.room_id,))
    # The typed client says Busy; nothing changed.
    with pytest.raises(werrors.Busy) as exc:
        Client(conn).as_user("hana").seek_to_time(room.room_id, 30)
    assert exc.value.sqlstate == "55P03"
    with pytest.raises(werrors.Busy):
        Client(conn).as_user("mika").leave_room(room.room_id)
    holder.rollback()
    state = Client(conn).as_user("hana").change_playback_state(room.room_id, True, 10)
    assert state.is_playing is True
    assert conn.execute(
        "select count(*) from public.room_members where room_id = %s", (room.room_id,)
    ).fetchone() == (2,)


def test_table_lock_makes_readers_and_joins_fail_fast(conn, holder):
    room = make_room(conn, host="hana")
    holder.execute("lock table public.rooms in access exclusive mode")
    _patient(conn)
    client = Client(conn)
    with pytest.raises(werrors.Busy):
        client.as_user("mika").join_room(room.room_id, username="Mika")
    with pytest.raises(werrors.Busy):
        client.as_user("hana").get_room(room.room_id)
    holder.rollback()
    assert client.as_user("mika").join_room(room.room_id, username="Mika").joined


def test_the_call_restores_the_callers_lock_timeout(conn):
    room = make_room(conn, host="hana")
    with as_user(conn, "hana") as c:
        c.execute("set local lock_timeout = '7s'")
        c.execute("select public.get_room(%s)", (room.room_id,))
        assert c.execute("show lock_timeout").fetchone() == ("7s",)


def _configured(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        """
        select c
        from pg_catalog.pg_proc p, unnest(p.proconfig) as c
        where p.pronamespace = 'public'::regnamespace and c like 'lock\\_timeout=%%'
        """
    ).fetchall()
    return {c for (c,) in rows}


def test_rpc_lock_timeout_setting_retunes_every_rpc(conn, holder):
    conn.execute(
        "update watchium_private.settings set value = '\"150ms\"' where key = 'rpc_lock_timeout'"
    )
    assert _configured(conn) == {"lock_timeout=150ms"}
    room = make_room(conn, host="hana")
    holder.execute("select 1 from public.rooms where room_id = %s for update", (room.room_id,))
    _patient(conn)
    with pytest.raises(werrors.Busy):
        Client(conn).as_user("hana").seek_to_time(room.room_id, 30)
    holder.rollback()
    conn.execute("update watchium_private.settings set value = '\"3s\"' where key = 'rpc_lock_timeout'")
    assert _configured(conn) == {"lock_timeout=3s"}


@pytest.mark.parametrize("value", ['"soon"', '"-1s"', '"2 hours"', "5", "null"])
def test_rpc_lock_timeout_refuses_bad_values(conn, value):
    with pytest.raises(psycopg.Error) as exc:
        conn.execute(
            "update watchium_private.settings set value = %s::jsonb where key = 'rpc_lock_timeout'",
            (value,),
        )
    assert exc.value.sqlstate == "22023" and "rpc_lock_timeout" in str(exc.value)
    assert _configured(conn) == {"lock_timeout=2s"}
    assert conn.execute(
        "select value #>> '{}' from watchium_private.settings where key = 'rpc_lock_timeout'"
    ).fetchone() == ("2s",)
