"""Durability per call (docs/architecture.md, "Durability").

A heartbeat that starts its transaction and writes no room event commits with
synchronous_commit = off; everything else commits with the session's setting. The setting a
transaction will commit with is read inside that transaction, right after the call.
"""

from __future__ import annotations

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


def commit_setting_after(conn: psycopg.Connection[Any], user: str | None, sql: str,
                         params: Any = None, *, role: str = "authenticated",
                         before: str | None = None) -> str:
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
        conn, "alice", "select public.record_heartbeat(%s, 110, false)", (room,)  # 10 s off
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
        ("alice", "select public.post_comment(p_anime_id => 'a1', p_episode_number => 3,"
                  " p_message => 'hello', p_username => 'Alice', p_room_id => %(room)s)"),
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
