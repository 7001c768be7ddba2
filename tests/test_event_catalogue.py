"""Events say what happened: every payload the functions emit matches watchium_db/events.py,
docs/realtime.md carries the table generated from it, and the fields that used to lie
(host_changed.previous_host_user_id, member_joined.is_host of an empty room's new host, the
playback `episode` event, the Live button's synced count) tell the truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from watchium_db import events
from watchium_db.testing import as_user, make_room

ROOT = Path(__file__).resolve().parent.parent


def rpc(conn: psycopg.Connection[Any], user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    return row[0] if row else None


def logged(conn: psycopg.Connection[Any], room_id: str) -> list[tuple[str, dict[str, Any]]]:
    return conn.execute(
        "select event, payload from watchium_private.room_events where room_id = %s"
        " order by event_id",
        (room_id,),
    ).fetchall()


def test_every_emitted_payload_matches_the_catalogue_and_every_event_is_emitted(conn):
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rid = room.room_id
    comment = rpc(
        conn, "hana",
        "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1,"
        " p_message => 'hi', p_room_id => %s)", rid,
    )  # fmt: skip
    rpc(conn, "hana", "select public.edit_comment(%s, 'hello')", comment["id"])
    rpc(conn, "hana", "select public.delete_comment(%s)", comment["id"])
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 10)", rid)
    rpc(conn, "hana", "select public.seek_to_time(%s, 300)", rid)
    rpc(conn, "hana", "select public.set_playback_speed(%s, 1.5)", rid)
    rpc(conn, "mio", "select public.record_heartbeat(%s, 5, true)", rid)  # far off: sync_status
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 5)", rid)  # sync_wait
    rpc(conn, "mio", "select public.report_playback_status(%s, 'ready', 5)", rid)
    rpc(conn, "hana", "select public.start_ready_check(%s, 30)", rid)  # ready_check
    rpc(conn, "mio", "select public.set_ready(%s, true)", rid)
    rpc(conn, "hana", "select public.force_resume(%s)", rid)
    rpc(conn, "hana", "select public.change_playback_state(%s, false)", rid)
    rpc(conn, "hana", "select public.start_ready_check(%s, 30)", rid)
    rpc(conn, "hana", "select public.cancel_ready_check(%s)", rid)  # ready_check cancelled
    for event, payload in (("play", {"current_time": 1}), ("pause", {"current_time": 2}),
                           ("seek", {"current_time": 3})):  # fmt: skip
        rpc(conn, "hana", "select public.broadcast_to_room(%s, %s, %s)", rid, event,
            json.dumps(payload))  # fmt: skip
    rpc(conn, "mio", "select public.broadcast_to_room(%s, 'chat_message', '{\"message\": \"yo\"}')",
        rid)  # fmt: skip
    add = (
        "select public.add_to_queue(%s, 'a1', 'Anime', %s, 'https://example.com/e', 1440::numeric)"
    )
    first = rpc(conn, "mio", add, rid, 3)["item_id"]
    second = rpc(conn, "mio", add, rid, 4)["item_id"]
    third = rpc(conn, "mio", add, rid, 5)["item_id"]
    rpc(conn, "hana", "select public.move_queue_item(%s, %s, 1)", rid, third)
    rpc(conn, "hana", "select public.remove_queue_item(%s, %s)", rid, second)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", rid)
    rpc(conn, "hana", "select public.advance_queue(%s, %s)", rid, third)
    assert first
    rpc(conn, "hana", "select public.update_room(%s, p_title => 'New', p_episode_number => 2)", rid)
    rpc(conn, "hana", "select public.set_room_sync_options(%s, '{\"episode_countdown\": 3}')", rid)
    rpc(conn, "hana", "select public.set_member_role(%s, 'ren', 'viewer')", rid)
    rpc(conn, "hana", "select public.set_room_permission(%s, 'chat', 'viewer')", rid)
    rpc(conn, "hana", "select public.mute_member(%s, 'mio', 60)", rid)
    rpc(conn, "hana", "select public.unmute_member(%s, 'mio')", rid)
    rpc(conn, "hana", "select public.set_member_role(%s, 'ren', 'member')", rid)
    rpc(conn, "ren", "select public.post_comment('a1', 2, 'bye', p_room_id => %s)", rid)
    rpc(conn, "hana", "select public.kick_member(%s, 'ren', 60)", rid)
    rpc(conn, "hana", "select public.hide_member_comments(%s, 'ren')", rid)
    rpc(conn, "hana", "select public.unban_member(%s, 'ren')", rid)
    rpc(conn, "hana", "select public.set_room_join_policy(%s, 'approval')", rid)
    rpc(conn, "kai", "select public.request_to_join(%s, 'Kai', 'hello')", rid)
    rpc(conn, "hana", "select public.answer_join_request(%s, 'kai', true)", rid)
    rpc(conn, "kai", "select public.withdraw_join_request(%s)", rid)
    rpc(conn, "hana", "select public.transfer_host(%s, 'mio')", rid)
    rpc(conn, "mio", "select public.leave_room(%s)", rid)
    rpc(conn, "hana", "select public.delete_room(%s)", rid)

    seen = logged(conn, rid)
    wrong = [(e, sorted(p)) for e, p in seen if e not in events.EVENTS
             or not events.EVENTS[e].allows(set(p))]  # fmt: skip
    assert wrong == []
    assert {e for e, _ in seen} == set(events.EVENTS)


def test_host_changed_names_the_previous_host(conn):
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rpc(conn, "hana", "select public.transfer_host(%s, 'mio')", room.room_id)
    rpc(conn, "mio", "select public.leave_room(%s)", room.room_id)  # hana is the longest present
    changes = [
        (p["host_user_id"], p["previous_host_user_id"])
        for e, p in logged(conn, room.room_id)
        if e == "host_changed"
    ]
    assert changes == [("mio", "hana"), ("hana", "mio")]


def test_the_new_host_of_an_empty_room_joins_as_host(conn):
    room = make_room(conn, host="hana")
    rpc(conn, "hana", "select public.leave_room(%s)", room.room_id)
    joined = rpc(conn, "mio", "select public.join_room(%s, p_username => 'Mio')", room.room_id)
    assert joined["membership"]["is_host"] is True
    tail = [(e, p) for e, p in logged(conn, room.room_id) if e in ("member_joined", "host_changed")]
    assert [(e, p.get("user_id") or p.get("host_user_id")) for e, p in tail][-2:] == [
        ("member_joined", "mio"),
        ("host_changed", "mio"),
    ]
    assert tail[-2][1]["is_host"] is True
    assert tail[-1][1]["previous_host_user_id"] is None  # the room had no host
    # A direct insert into the emptied room keeps one host per non-empty room as well.
    rpc(conn, "mio", "select public.leave_room(%s)", room.room_id)
    conn.execute(
        "insert into public.room_members (room_id, user_id, username) values (%s, 'kai', 'Kai')",
        (room.room_id,),
    )
    assert conn.execute(
        "select host_user_id from public.rooms where room_id = %s", (room.room_id,)
    ).fetchone() == ("kai",)


def test_changing_the_episode_sends_the_playback_episode_event(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 42)", room.room_id)
    rpc(conn, "hana", "select public.update_room(%s, p_episode_number => 7)", room.room_id)
    playback = [p for e, p in logged(conn, room.room_id) if e == "playback"]
    assert [p["action"] for p in playback] == ["play", "episode"]
    assert playback[-1]["episode_number"] == 7
    assert playback[-1]["current_time"] == 0 and playback[-1]["is_playing"] is False
    # The title alone is no playback change.
    rpc(conn, "hana", "select public.update_room(%s, p_title => 'Other')", room.room_id)
    assert [e for e, _ in logged(conn, room.room_id)].count("playback") == 2


def test_live_button_does_not_count_a_member_that_never_reported(conn):
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rpc(conn, "mio", "select public.record_heartbeat(%s, 0, false)", room.room_id)
    state = rpc(conn, "hana", "select public.get_room_sync_state(%s)", room.room_id)
    # hana is the host (it sets the position); mio reported in sync; ren joined and never did.
    assert state["stats"]["members"] == 3
    assert state["stats"]["synced_members"] == 2
    assert state["stats"]["needs_resync_members"] == 1
    me = rpc(conn, "ren", "select public.get_room_sync_state(%s)", room.room_id)["me"]
    assert me["needs_resync"] is True


def test_docs_carry_the_generated_event_table():
    text = (ROOT / "docs" / "realtime.md").read_text()
    assert events.markdown_table() in text, (
        "docs/realtime.md's event catalogue is stale: paste `python -m watchium_db.events`"
    )
