"""Room events on plain PostgreSQL: every event of the catalogue reaches a LISTENing connection
with its payload; oversized payloads are sent truncated and never fail the transaction; the log
keeps the full event; delivery follows the one setting; retention."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

ROOM = "evroom0001"
CHANNEL = f'"watchium:room:{ROOM}"'

# The event catalogue (docs/realtime.md) with a representative payload for each.
CATALOGUE: list[tuple[str, dict[str, Any]]] = [
    ("member_joined", {"user_id": "bob", "username": "Bob"}),
    ("member_left", {"user_id": "bob", "username": "Bob"}),
    ("member_kicked", {"user_id": "bob", "by": "alice"}),
    ("host_changed", {"from_user_id": "alice", "to_user_id": "bob"}),
    ("room_updated", {"title": "New title"}),
    ("room_deleted", {}),
    ("comment_added", {"id": 7, "message": "hi", "user_id": "bob"}),
    ("playback", {"action": "play", "current_time": 12.5, "playback_speed": 1.0}),
    ("playback", {"action": "pause", "current_time": 13.0}),
    ("playback", {"action": "seek", "current_time": 600.25}),
    ("playback", {"action": "speed", "playback_speed": 1.5}),
    ("playback", {"action": "episode", "episode_number": 2}),
    ("sync_status", {"user_id": "bob", "is_synced": False, "sync_level": "out_of_sync"}),
]


def _listen(url: str) -> psycopg.Connection[Any]:
    lconn = psycopg.connect(url, autocommit=True)
    lconn.execute(f"listen {CHANNEL}")
    return lconn


def _drain(lconn: psycopg.Connection[Any], n: int) -> list[dict[str, Any]]:
    got = [json.loads(n.payload) for n in lconn.notifies(timeout=3, stop_after=n)]
    return got


def test_every_catalogue_event_arrives_with_its_payload(conn, watchium_db_url):
    lconn = _listen(watchium_db_url)
    try:
        ids = []
        for event, payload in CATALOGUE:
            row = conn.execute(
                "select watchium_private.emit_room_event(%s, %s, %s)",
                (ROOM, event, json.dumps(payload)),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
        got = _drain(lconn, len(CATALOGUE))
    finally:
        lconn.close()
    assert [(m["event_id"], m["event"], m["payload"]) for m in got] == [
        (i, e, p) for i, (e, p) in zip(ids, CATALOGUE, strict=True)
    ]
    assert all(m["room_id"] == ROOM and "sent_at" in m for m in got)


def test_rolled_back_event_is_not_sent(conn, watchium_db_url):
    lconn = _listen(watchium_db_url)
    try:
        with pytest.raises(ZeroDivisionError), conn.transaction():
            conn.execute(
                "select watchium_private.emit_room_event(%s, 'room_updated', '{}')", (ROOM,)
            )
            raise ZeroDivisionError
        conn.execute("select watchium_private.emit_room_event(%s, 'room_deleted', '{}')", (ROOM,))
        got = _drain(lconn, 1)
        late = list(lconn.notifies(timeout=0.2))
    finally:
        lconn.close()
    assert [m["event"] for m in got] == ["room_deleted"] and late == []


def test_oversized_payload_is_sent_truncated_and_logged_whole(conn, watchium_db_url):
    big = {"message": "x" * 20000}
    lconn = _listen(watchium_db_url)
    try:
        row = conn.execute(
            "select watchium_private.emit_room_event(%s, 'comment_added', %s)",
            (ROOM, json.dumps(big)),
        ).fetchone()
        assert row is not None
        notes = list(lconn.notifies(timeout=3, stop_after=1))
    finally:
        lconn.close()
    assert len(notes) == 1 and len(notes[0].payload.encode()) < 8000
    assert json.loads(notes[0].payload) == {
        "event_id": row[0],
        "room_id": ROOM,
        "event": "comment_added",
        "truncated": True,
    }
    full = conn.execute(
        "select watchium_private.read_room_event(%s, %s)", (ROOM, row[0])
    ).fetchone()
    assert full is not None and full[0]["payload"] == big


def test_payload_just_under_the_limit_is_sent_whole(conn, watchium_db_url):
    lconn = _listen(watchium_db_url)
    try:
        # Find the largest message that still fits: the whole message must stay under 8000 bytes.
        conn.execute(
            "select watchium_private.emit_room_event(%s, 'comment_added', %s)",
            (ROOM, json.dumps({"m": ""})),
        )
        base = len(next(iter(lconn.notifies(timeout=3, stop_after=1))).payload.encode())
        # sent_at's fractional seconds vary by up to 7 characters and event_id by a digit.
        fits = {"m": "y" * (7999 - base - 8)}
        conn.execute(
            "select watchium_private.emit_room_event(%s, 'comment_added', %s)",
            (ROOM, json.dumps(fits)),
        )
        note = next(iter(lconn.notifies(timeout=3, stop_after=1)))
    finally:
        lconn.close()
    message = json.loads(note.payload)
    assert len(note.payload.encode()) <= 7999 and message["payload"] == fits


def test_delivery_setting_is_the_one_switch(conn, watchium_db_url):
    assert conn.execute("select watchium_private.room_event_delivery()").fetchone() == ("notify",)
    conn.execute(
        "update watchium_private.settings set value = '\"both\"' where key = 'room_event_delivery'"
    )
    # 'both' without realtime.send still only NOTIFYs.
    assert conn.execute("select watchium_private.room_event_delivery()").fetchone() == ("notify",)


def test_expire_room_events_keeps_recent_and_reports(conn):
    conn.execute("select watchium_private.emit_room_event(%s, 'room_updated', '{}')", (ROOM,))
    conn.execute("select watchium_private.emit_room_event(%s, 'room_updated', '{}')", (ROOM,))
    conn.execute(
        "update watchium_private.room_events set created_at = now() - interval '2 hours'"
        " where event_id = (select min(event_id) from watchium_private.room_events)"
    )
    result = conn.execute("select watchium_private.expire_room_events()").fetchone()
    assert result == ({"deleted": 1, "retention": "01:00:00", "positions_pruned": 0},)
    assert conn.execute("select count(*) from watchium_private.room_events").fetchone() == (1,)
