"""On Supabase (a stand-in realtime schema with Supabase's documented signatures): room events
land in realtime.messages on the room's private topic, and Realtime Authorization lets only
members receive (SELECT) and send (INSERT) broadcast and presence on room:<room_id>."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from watchium_db import migrate
from watchium_db.testing import as_user
from watchium_db.testing.realtime import install_realtime_standin, realtime_topic

ROOM = "sbroom0001"
OTHER = "sbroom0002"
POLICIES = ["watchium_messages_insert_authenticated", "watchium_messages_select_authenticated"]


def _room(conn: psycopg.Connection[Any], room_id: str, *members: str) -> None:
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,"
        " host_user_id, host_username) values (%s, 'T', 'a1', 'Anime', 1, 'https://e.x/v', %s, 'H')",
        (room_id, members[0]),
    )
    for i, user in enumerate(members):
        conn.execute(
            "insert into public.room_members (room_id, user_id, username, is_host) values (%s, %s, %s, %s)",
            (room_id, user, user, i == 0),
        )


@pytest.fixture
def supabase(conn):
    """The template database plus Realtime installed after our migrations (the common case)."""
    assert install_realtime_standin(conn)
    assert conn.execute("select watchium_private.install_realtime_authorization()").fetchone() == (
        True,
    )
    _room(conn, ROOM, "alice", "bob")
    _room(conn, OTHER, "carol")
    return conn


def _policies(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select policyname from pg_policies where schemaname = 'realtime' and tablename = 'messages' order by 1"
        ).fetchall()
    ]


def test_events_land_in_realtime_messages_on_the_room_topic(supabase, watchium_db_url):
    conn = supabase
    lconn = psycopg.connect(watchium_db_url, autocommit=True)
    try:
        lconn.execute(f'listen "watchium:room:{ROOM}"')
        assert conn.execute("select watchium_private.room_event_delivery()").fetchone() == (
            "realtime",
        )
        row = conn.execute(
            "select watchium_private.emit_room_event(%s, 'playback', %s)",
            (ROOM, json.dumps({"action": "pause", "current_time": 42})),
        ).fetchone()
        assert row is not None
        with as_user(conn, "bob") as c:
            c.execute(
                "select public.broadcast_to_room(%s, 'chat_message', '{\"message\": \"hey\"}')",
                (ROOM,),
            )
        notes = list(lconn.notifies(timeout=0.5))
    finally:
        lconn.close()
    assert notes == []  # the realtime path replaces NOTIFY
    messages = conn.execute(
        "select topic, extension, event, private, payload from realtime.messages"
        " where event in ('playback', 'chat_message') order by id"
    ).fetchall()
    assert [(t, x, e, p) for t, x, e, p, _ in messages] == [
        (f"room:{ROOM}", "broadcast", "playback", True),
        (f"room:{ROOM}", "broadcast", "chat_message", True),
    ]
    assert messages[0][4]["event_id"] == row[0]
    assert messages[0][4]["payload"] == {"action": "pause", "current_time": 42}
    assert messages[1][4]["payload"] == {"message": "hey", "user_id": "bob", "username": "bob"}


def test_delivery_both_sends_through_realtime_and_notify(supabase, watchium_db_url):
    conn = supabase
    conn.execute(
        "update watchium_private.settings set value = '\"both\"' where key = 'room_event_delivery'"
    )
    lconn = psycopg.connect(watchium_db_url, autocommit=True)
    try:
        lconn.execute(f'listen "watchium:room:{ROOM}"')
        conn.execute("select watchium_private.emit_room_event(%s, 'room_updated', '{}')", (ROOM,))
        notes = list(lconn.notifies(timeout=3, stop_after=1))
    finally:
        lconn.close()
    assert [json.loads(n.payload)["event"] for n in notes] == ["room_updated"]
    assert conn.execute(
        "select count(*) from realtime.messages where event = 'room_updated'"
    ).fetchone() == (1,)


def _can_receive(conn, user: str, topic: str) -> bool:
    """Realtime's receive check: the caller's SELECT on realtime.messages with the topic set."""
    conn.execute(
        "insert into realtime.messages (topic, extension, event, payload) values (%s, 'broadcast', 'x', '{}')",
        (topic,),
    )
    with as_user(conn, user) as c:
        realtime_topic(c, topic)
        row = c.execute(
            "select count(*) from realtime.messages where topic = realtime.topic()"
        ).fetchone()
    conn.execute("delete from realtime.messages")
    assert row is not None
    return bool(row[0])


def _can_send(conn, user: str, topic: str, extension: str = "broadcast") -> bool:
    """Realtime's send check: the caller's INSERT into realtime.messages with the topic set."""
    try:
        with as_user(conn, user) as c:
            realtime_topic(c, topic)
            c.execute(
                "insert into realtime.messages (topic, extension, event, payload) values (%s, %s, 'x', '{}')",
                (topic, extension),
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        assert "row-level security" in str(exc)
        return False
    return True


def test_members_receive_and_send_non_members_do_not(supabase):
    conn = supabase
    assert _can_receive(conn, "alice", f"room:{ROOM}")
    assert _can_receive(conn, "bob", f"room:{ROOM}")
    assert not _can_receive(conn, "carol", f"room:{ROOM}")
    assert _can_receive(conn, "carol", f"room:{OTHER}")
    assert not _can_receive(conn, "bob", "room:")
    assert _can_send(conn, "bob", f"room:{ROOM}")
    assert _can_send(conn, "bob", f"room:{ROOM}", "presence")
    assert not _can_send(conn, "carol", f"room:{ROOM}")
    assert not _can_send(conn, "bob", f"room:{OTHER}")
    assert not _can_send(conn, "bob", "global-presence")


def test_anonymous_and_left_members_are_refused(supabase):
    conn = supabase
    with as_user(conn, None, role="anon") as c:
        realtime_topic(c, f"room:{ROOM}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("select count(*) from realtime.messages")
    conn.execute("delete from public.room_members where room_id = %s and user_id = 'bob'", (ROOM,))
    assert not _can_send(conn, "bob", f"room:{ROOM}")
    assert not _can_receive(conn, "bob", f"room:{ROOM}")


def test_install_is_idempotent_and_health_flags_missing_policies(supabase):
    conn = supabase
    assert conn.execute("select watchium_private.install_realtime_authorization()").fetchone() == (
        True,
    )
    assert _policies(conn) == POLICIES
    report = conn.execute("select watchium_private.realtime_health()").fetchone()[0]
    assert report["ok"] and report["realtime"]["delivery"] == "realtime"
    assert report["authorization"] == {
        "required": True,
        "policies": {p: True for p in reversed(POLICIES)},
    }
    conn.execute("drop policy watchium_messages_insert_authenticated on realtime.messages")
    report = conn.execute("select watchium_private.realtime_health()").fetchone()[0]
    assert not report["ok"]
    assert any(
        "watchium_messages_insert_authenticated" in p and "install_realtime_authorization" in p
        for p in report["problems"]
    )


def test_migrations_install_policies_when_realtime_exists_first(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        install_realtime_standin(c)
    migrate.upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert _policies(c) == POLICIES
    migrate.downgrade(empty_db_url, "0005")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert _policies(c) == []
        assert c.execute("select to_regclass('realtime.messages') is not null").fetchone() == (
            True,
        )
