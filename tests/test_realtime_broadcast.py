"""broadcast_to_room: members only, payload validated per event type, sender from the token,
rate limited, delivered through the room's channel."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user

ROOM = "bcroom0001"
OTHER = "bcroom0002"


def _room(conn: psycopg.Connection[Any], room_id: str, host: str, *members: str) -> None:
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,"
        " host_user_id, host_username) values (%s, 'T', 'a1', 'Anime', 1, 'https://e.x/v', %s, %s)",
        (room_id, host, host.title()),
    )
    for user in (host, *members):
        conn.execute(
            "insert into public.room_members (room_id, user_id, username, is_host)"
            " values (%s, %s, %s, %s)",
            (room_id, user, user.title(), user == host),
        )


@pytest.fixture
def room(conn):
    _room(conn, ROOM, "alice", "bob")
    _room(conn, OTHER, "carol")
    return ROOM


def _broadcast(conn, user, event, payload, room_id=ROOM):
    with as_user(conn, user) as c:
        row = c.execute(
            "select public.broadcast_to_room(%s, %s, %s)", (room_id, event, json.dumps(payload))
        ).fetchone()
    assert row is not None
    return row[0]


def test_member_chat_is_delivered_with_identity_from_the_token(conn, watchium_db_url, room):
    lconn = psycopg.connect(watchium_db_url, autocommit=True)
    try:
        lconn.execute(f'listen "watchium:room:{ROOM}"')
        lconn.execute(f'listen "watchium:room:{ROOM}:members"')
        event_id = _broadcast(conn, "bob", "chat_message", {"message": "hello", "user_id": "alice"})
        note = next(iter(lconn.notifies(timeout=3, stop_after=1)))
        assert note.channel == f"watchium:room:{ROOM}:members"  # never the database's channel
    finally:
        lconn.close()
    message = json.loads(note.payload)
    assert message["event_id"] == event_id and message["event"] == "chat_message"
    assert message["payload"] == {"message": "hello", "user_id": "bob", "username": "Bob"}


def test_host_sends_play_with_rounded_time(conn, room):
    event_id = _broadcast(conn, "alice", "seek", {"current_time": 0})
    _broadcast(conn, "alice", "play", {"current_time": 12.345})
    rows = conn.execute(
        "select event, payload from watchium_private.room_events where event_id >= %s order by event_id",
        (event_id,),
    ).fetchall()
    assert rows == [
        ("seek", {"current_time": 0, "user_id": "alice", "username": "Alice"}),
        ("play", {"current_time": 12.35, "user_id": "alice", "username": "Alice"}),
    ]


@pytest.mark.parametrize(
    "user, event", [("carol", "chat_message"), ("bob", "play"), ("bob", "seek")]
)
def test_non_members_and_non_hosts_are_refused(conn, room, user, event):
    payload = {"message": "x"} if event == "chat_message" else {"current_time": 1}
    count = "select count(*) from watchium_private.room_events"
    before = conn.execute(count).fetchone()  # the joins of the fixture logged member_joined
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
        _broadcast(conn, user, event, payload)
    assert exc.value.sqlstate == "42501"
    assert conn.execute(count).fetchone() == before


def test_anonymous_callers_cannot_broadcast(conn, room):
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege) as exc,
        as_user(conn, None, role="anon") as c,
    ):
        c.execute(
            "select public.broadcast_to_room(%s, 'chat_message', '{\"message\": \"x\"}')", (ROOM,)
        )
    assert "permission denied" in str(exc.value)
    with (
        pytest.raises(psycopg.errors.InvalidAuthorizationSpecification) as exc2,
        as_user(conn, None) as c,
    ):
        c.execute(
            "select public.broadcast_to_room(%s, 'chat_message', '{\"message\": \"x\"}')", (ROOM,)
        )
    assert exc2.value.sqlstate == "28000"


@pytest.mark.parametrize(
    "event, payload, names",
    [
        ("play", {}, "p_payload.current_time"),
        ("pause", {"current_time": "12"}, "p_payload.current_time"),
        ("play", {"current_time": "NaN"}, "p_payload.current_time"),
        ("seek", {"current_time": -0.01}, "p_payload.current_time"),
        ("seek", {"current_time": 86400.01}, "p_payload.current_time"),
        ("seek", {"current_time": None}, "p_payload.current_time"),
        ("chat_message", {"message": "   "}, "p_payload.message"),
        ("chat_message", {"message": ""}, "p_payload.message"),
        ("chat_message", {"message": "m" * 2001}, "p_payload.message"),
        ("chat_message", {"message": 5}, "p_payload.message"),
        ("chat_message", {"message": "hi", "timestamp": 1}, "p_payload.timestamp"),
        ("custom_event", {"x": 1}, "p_event_type"),
        ("member_joined", {}, "p_event_type"),
        ("chat_message", ["hi"], "p_payload"),
    ],
)
def test_invalid_payloads_are_rejected_naming_the_field(conn, room, event, payload, names):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        _broadcast(conn, "alice", event, payload)
    assert exc.value.sqlstate == "22023"
    assert str(exc.value).startswith(names)


def test_invalid_room_id_and_oversized_payload(conn, room):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        _broadcast(conn, "alice", "chat_message", {"message": "x"}, room_id="NOT A ROOM")
    assert str(exc.value).startswith("p_room_id")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        _broadcast(conn, "alice", "chat_message", {"message": "é" * 2000, "username": "u" * 20000})
    assert str(exc.value).startswith("p_payload must be at most 16384 bytes")


def test_broadcast_is_rate_limited(conn, room):
    conn.execute(
        "update watchium_private.rate_limit_rules set max_requests = 2 where action = 'broadcast'"
    )
    _broadcast(conn, "bob", "chat_message", {"message": "1"})
    _broadcast(conn, "bob", "chat_message", {"message": "2"})
    with pytest.raises(psycopg.Error) as exc:
        _broadcast(conn, "bob", "chat_message", {"message": "3"})
    assert exc.value.sqlstate == "WD429" and "broadcast" in str(exc.value)
    # Another user has their own budget.
    _broadcast(conn, "alice", "chat_message", {"message": "1"})
