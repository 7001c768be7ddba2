"""Durability per call (docs/architecture.md, "Durability").

A heartbeat that starts its transaction and writes no room event commits with
synchronous_commit = off; everything else commits with the session's setting. The setting a
transaction will commit with is read inside that transaction, right after the call.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from tests.sync_factories import (
    BATCH_SQL,
    ROOM_ID,
    age,
    as_service,
    batch_arguments,
    events,
    make_room,
    one,
)
from watchium_db.testing import as_user
from watchium_db.testing import make_room as make_test_room


@pytest.fixture
def room(conn: psycopg.Connection[Any]) -> str:
    # The test server runs with synchronous_commit = off for speed; these tests need the
    # production default to tell the two apart.
    conn.execute("set synchronous_commit = on")
    make_room(conn, playing=False, position=100)
    # A first heartbeat per member sets its level (and writes a sync_status event); the
    # heartbeats under test then find their level unchanged.
    for user in ("host", "alice", "bob"):
        with as_user(conn, user) as c:
            c.execute("select public.record_heartbeat(%s, 100, false)", (ROOM_ID,))
    age(conn, ROOM_ID, 5)
    return ROOM_ID


def commit_setting_after(
    conn: psycopg.Connection[Any],
    user: str | None,
    sql: str,
    params: Any = None,
    *,
    role: str = "authenticated",
    before: str | None = None,
) -> str:
    """Run ``sql`` as ``user`` in one transaction; the synchronous_commit it will commit with."""
    with as_user(conn, user, role=role) as c:
        if before is not None:
            c.execute(before)
        c.execute(sql, params)
        setting: str = one(c, "select pg_catalog.current_setting('synchronous_commit')")
    return setting


def test_a_heartbeat_that_changes_nothing_durable_commits_softly(conn, room):
    n_events = len(events(conn))
    setting = commit_setting_after(
        conn, "alice", "select public.record_heartbeat(%s, 100, false)", (room,)
    )
    assert setting == "off"
    assert len(events(conn)) == n_events  # no event was written
    # Only that transaction: the next one commits as the session does.
    assert one(conn, "select pg_catalog.current_setting('synchronous_commit')") == "on"
    # And it was stored.
    assert one(
        conn,
        "select last_heartbeat > now() - interval '1 second' from watchium_private.member_presence"
        " where room_id = %s and user_id = 'alice'",
        (room,),
    )


def test_a_heartbeat_that_writes_an_event_commits_durably(conn, room):
    n_events = len(events(conn, event="sync_status"))
    setting = commit_setting_after(
        conn,
        "alice",
        "select public.record_heartbeat(%s, 110, false)",
        (room,),  # 10 s off
    )
    assert len(events(conn, event="sync_status")) == n_events + 1
    assert setting == "on"


def test_a_heartbeat_after_other_writes_keeps_the_transaction_durable(conn, room):
    # The caller's transaction wrote before the heartbeat (a comment): it keeps its durability.
    setting = commit_setting_after(
        conn,
        "alice",
        "select public.record_heartbeat(%s, 100, false)",
        (room,),
        before=(
            "select public.post_comment(p_anime_id => 'a1', p_episode_number => 3,"
            f" p_message => 'before the heartbeat', p_username => 'Alice', p_room_id => '{room}')"
        ),
    )
    assert setting == "on"


def test_the_session_setting_is_restored_not_replaced(conn, room):
    # A session committing with remote_apply gets remote_apply back when an event is written.
    conn.execute("set synchronous_commit = remote_apply")
    setting = commit_setting_after(
        conn, "alice", "select public.record_heartbeat(%s, 110, false)", (room,)
    )
    assert setting == "remote_apply"
    # A session that chose off keeps off.
    conn.execute("set synchronous_commit = off")
    age(conn, room, 5)
    setting = commit_setting_after(
        conn, "bob", "select public.record_heartbeat(%s, 110, false)", (room,)
    )
    assert setting == "off"


def test_batched_heartbeats_commit_softly_unless_a_level_changes(conn, room):
    with as_service(conn) as c:
        c.execute(BATCH_SQL, batch_arguments([("alice", 100, False), ("bob", 100, False)]))
        assert one(c, "select pg_catalog.current_setting('synchronous_commit')") == "off"
    age(conn, room, 5)
    n_events = len(events(conn, event="sync_status"))
    with as_service(conn) as c:
        c.execute(BATCH_SQL, batch_arguments([("alice", 100, False), ("bob", 107, False)]))
        assert one(c, "select pg_catalog.current_setting('synchronous_commit')") == "on"
    assert len(events(conn, event="sync_status")) == n_events + 1


@pytest.mark.parametrize(
    ("user", "sql"),
    [
        ("host", "select public.change_playback_state(%(room)s, true, 100)"),
        ("host", "select public.seek_to_time(%(room)s, 50)"),
        (
            "alice",
            "select public.post_comment(p_anime_id => 'a1', p_episode_number => 3,"
            " p_message => 'hello', p_username => 'Alice', p_room_id => %(room)s)",
        ),
        ("alice", "select public.leave_room(%(room)s)"),
        ("carol", "select public.join_room(%(room)s, p_username => 'Carol')"),
    ],
)
def test_other_calls_commit_durably_even_after_a_soft_heartbeat(conn, room, user, sql):
    # Each writes a room event; the next test shows the event restores durability even after
    # a soft heartbeat in the same transaction.
    assert commit_setting_after(conn, user, sql, {"room": room}) == "on"


def test_host_control_after_a_heartbeat_in_one_transaction_is_durable(conn, room):
    with as_user(conn, "host") as c:
        c.execute("select public.record_heartbeat(%s, 100, false)", (room,))
        assert one(c, "select pg_catalog.current_setting('synchronous_commit')") == "off"
        c.execute("select public.change_playback_state(%s, true, 100)", (room,))
        assert one(c, "select pg_catalog.current_setting('synchronous_commit')") == "on"


# ---------------------------------------------------------------------------------------------
# a crash while heartbeats commit softly
# ---------------------------------------------------------------------------------------------
def _heartbeats_until_stopped(
    url: str, room_id: str, users: list[str], stop: threading.Event, acked: dict[str, int]
) -> None:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                for user in users:
                    with as_user(conn, user) as c:
                        c.execute("select public.record_heartbeat(%s, 100, true)", (room_id,))
                    acked[user] = acked.get(user, 0) + 1
    except psycopg.Error:
        pass  # the server went away under us: that is the test


@pytest.mark.slow
def test_after_a_crash_during_soft_heartbeats_the_state_is_consistent():
    """Heartbeats (soft) from 16 members while durable calls go on; the server is stopped
    with -m immediate (no flush, as in a crash) and restarted. Every acknowledged durable call
    is there, presence and membership agree, and the next heartbeat of every member works."""
    from watchium_db.devtools.bench import durable_server, prepare_database

    with durable_server() as server:
        url = prepare_database(server, "watchium_crash")
        members = [f"m{i:02}" for i in range(16)]
        with psycopg.connect(url, autocommit=True) as conn:
            assert one(conn, "show synchronous_commit") == "on"
            room = make_test_room(conn, host="host", members=members)
        stop = threading.Event()
        acked: dict[str, int] = {}
        workers = [
            threading.Thread(
                target=_heartbeats_until_stopped,
                args=(url, room.room_id, members[i::4], stop, acked),
            )
            for i in range(4)
        ]
        for w in workers:
            w.start()
        durable: list[tuple[str, Any]] = []  # acknowledged durable calls, in order
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(20):
                with as_user(conn, "host") as c:
                    state = one(c, "select public.seek_to_time(%s, %s)", (room.room_id, 10 + i))
                durable.append(("seek", state["current_time"]))
                joiner = f"late{i:02}"
                with as_user(conn, joiner) as c:
                    c.execute("select public.join_room(%s, p_username => 'Late')", (room.room_id,))
                durable.append(("joined", joiner))
                time.sleep(0.05)
            # Crash while heartbeats are in flight.
            server._run(
                str(server.bindir / "pg_ctl"), "stop", "-D", str(server.data_dir), "-m", "immediate"
            )
        stop.set()
        for w in workers:
            w.join(timeout=30)
        assert sum(acked.values()) > 100, acked  # heartbeats were really running
        server.start()
        server.wait_ready()
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(url, autocommit=True)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn:
            # Every acknowledged durable call survived.
            last_seek = [v for kind, v in durable if kind == "seek"][-1]
            assert (
                one(
                    conn,
                    "select current_playback_time from public.rooms where room_id = %s",
                    (room.room_id,),
                )
                == last_seek
            )
            joined = [v for kind, v in durable if kind == "joined"]
            assert conn.execute(
                "select count(*) from public.room_members where room_id = %s and user_id = any(%s)",
                (room.room_id, joined),
            ).fetchone() == (len(joined),)
            # Membership and presence agree; one host.
            assert (
                one(
                    conn,
                    "select count(*) from public.room_members m full join"
                    " watchium_private.member_presence p using (room_id, user_id)"
                    " where m.user_id is null or p.user_id is null",
                )
                == 0
            )
            assert (
                one(
                    conn,
                    "select count(*) from public.room_members where room_id = %s and is_host",
                    (room.room_id,),
                )
                == 1
            )
            # The next heartbeat of every member finds its state and answers.
            for user in members:
                with as_user(conn, user) as c:
                    status = one(c, "select public.record_heartbeat(%s, 29, true)", (room.room_id,))
                assert status["room_id"] == room.room_id and "sync_level" in status
