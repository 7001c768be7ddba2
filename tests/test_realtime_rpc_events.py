"""End to end on plain PostgreSQL: the room events the RPCs emit arrive at a LISTENing
connection on the room's channel, with their payloads, in commit order."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from watchium_db.testing import as_user, make_room


def rpc(conn: psycopg.Connection[Any], user: str, sql: str, *args: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, args).fetchone()
    return None if row is None else row[0]


def test_rpc_events_reach_a_listener(conn, watchium_db_url):
    room = make_room(conn, host="hana", members=["mio"])
    room_id = room.room_id
    listener = psycopg.connect(watchium_db_url, autocommit=True)
    try:
        listener.execute(f'listen "watchium:room:{room_id}"')
        listener.execute(f'listen "watchium:room:{room_id}:members"')
        rpc(conn, "ren", "select public.join_room(%s, null, 'Ren')", room_id)
        rpc(conn, "hana", "select public.change_playback_state(%s, true, 10)", room_id)
        rpc(conn, "hana", "select public.seek_to_time(%s, 300)", room_id)
        rpc(conn, "hana", "select public.set_playback_speed(%s, 1.5)", room_id)
        rpc(
            conn,
            "mio",
            "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1,"
            " p_message => 'nice', p_room_id => %s)",
            room_id,
        )
        rpc(
            conn,
            "mio",
            "select public.broadcast_to_room(%s, 'chat_message', '{\"message\": \"hi\"}')",
            room_id,
        )
        # Far behind the host: Ren's sync status changes, which is announced.
        rpc(conn, "ren", "select public.record_heartbeat(%s, 5, true)", room_id)
        rpc(conn, "hana", "select public.kick_member(%s, 'ren')", room_id)
        rpc(conn, "hana", "select public.leave_room(%s)", room_id)
        notes = list(listener.notifies(timeout=2))
    finally:
        listener.close()
    messages = [json.loads(n.payload) for n in notes]
    events = [m["event"] for m in messages]
    for expected in (
        "member_joined",
        "playback",
        "comment_added",
        "chat_message",
        "sync_status",
        "member_kicked",
        "member_left",
        "host_changed",
    ):
        assert expected in events, (expected, events)
    assert all(m["room_id"] == room_id for m in messages)
    # Member broadcasts on their own channel, the database's events on the room's.
    channels = {json.loads(n.payload)["event"]: n.channel for n in notes}
    assert channels["chat_message"] == f"watchium:room:{room_id}:members"
    assert {c for e, c in channels.items() if e != "chat_message"} == {f"watchium:room:{room_id}"}
    ids = [m["event_id"] for m in messages]
    assert len(ids) == len(set(ids))  # each event once
    playback = [m["payload"] for m in messages if m["event"] == "playback"]
    assert [p["action"] for p in playback] == ["play", "seek", "speed"]
    assert playback[1]["current_time"] == 300
    chat = next(m["payload"] for m in messages if m["event"] == "chat_message")
    assert chat["user_id"] == "mio" and chat["message"] == "hi"
    host = next(m["payload"] for m in messages if m["event"] == "host_changed")
    assert host["host_user_id"] == "mio"
    # No access key or other secret in any message of a public room's channel.
    assert all("access_key" not in json.dumps(m) for m in messages)
