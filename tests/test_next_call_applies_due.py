"""The next call on a room applies what fell due (revision 0029): a member's heartbeat (or an
edge server's batch) advances a queue whose item is over and applies passed wait deadlines,
then measures the heartbeat against the room as it is afterwards; it never waits for a room
row someone holds; a non-member's heartbeat applies nothing. A queue advance in a playing room
starts the next item at a scheduled start (the episode countdown)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from tests.sync_factories import as_service
from tests.test_group_wait import expire
from tests.test_queue import add, events, play_past_the_end, room_row, rpc, sqlstate
from watchium_db.testing import make_room

Conn = psycopg.Connection[Any]
BEAT = "select public.record_heartbeat(%s, %s::numeric, true)"
BATCH = (
    "select user_id, outcome, expected_time from public.record_heartbeats("
    "%s, %s::text[], %s::numeric[], %s::boolean[])"
)


def queue_room(conn: Conn, members: list[str]) -> tuple[str, int, int]:
    """A playing room on item a (100 s), item b (200 s) next, a's end 3 s past."""
    room = make_room(conn, host="hana", members=members)
    a = add(conn, "hana", room.room_id, 2, 100)
    b = add(conn, "hana", room.room_id, 3, 200)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    play_past_the_end(conn, room.room_id, 3.0)
    assert room_row(conn, room.room_id)["queue_item_id"] == a
    return room.room_id, a, b


def test_a_members_heartbeat_advances_a_finished_item_and_is_measured_after_it(conn):
    rid, a, b = queue_room(conn, ["mio"])
    reply = rpc(conn, "mio", BEAT, rid, 103)
    room = room_row(conn, rid)
    assert (room["queue_item_id"], room["episode_number"]) == (b, 3)
    advanced = [p for _, p in events(conn, rid, "queue_advanced")]
    assert (advanced[-1]["reason"], advanced[-1]["from_item_id"]) == ("auto", a)
    # Measured against item b, which starts from 0: a member still at a's end is far off.
    assert Decimal(str(reply["expected_time"])) == 0
    assert reply["sync_level"] == "out_of_sync"


def test_an_edge_servers_batch_advances_a_finished_item_first(conn):
    rid, _a, b = queue_room(conn, ["mio", "ren"])
    with as_service(conn) as c:
        rows = c.execute(BATCH, (rid, ["mio", "ren"], ["0", "0"], [True, True])).fetchall()
    assert room_row(conn, rid)["queue_item_id"] == b
    assert [(u, o, Decimal(str(e))) for u, o, e in rows] == [("mio", "ok", 0), ("ren", "ok", 0)]


def test_a_heartbeat_applies_a_passed_wait_deadline(conn):
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rid = room.room_id
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 100)", rid)
    for user in ("mio", "ren"):
        rpc(conn, user, "select public.report_playback_status(%s, 'ready', 100)", rid)
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 101)", rid)
    assert room_row(conn, rid)["waiting_reason"] == "buffering"
    expire(conn, rid, "mio")
    rpc(conn, "ren", BEAT, rid, 101)
    room = room_row(conn, rid)
    assert room["waiting_reason"] is None and room["is_playing"] is True
    last = events(conn, rid, "sync_wait")[-1][1]
    assert (last["state"], last["cause"], last["skipped"]) == ("resumed", "deadline", ["mio"])


def test_a_heartbeat_never_waits_for_a_room_row_someone_holds(watchium_db_url, conn):
    rid, a, _b = queue_room(conn, ["mio"])
    with psycopg.connect(watchium_db_url) as holder:
        holder.execute("select 1 from public.rooms where room_id = %s for update", (rid,))
        # Waiting for the row would fail on this lock_timeout (55P03).
        conn.execute("set lock_timeout = '200ms'")
        try:
            reply = rpc(conn, "mio", BEAT, rid, 103)
        finally:
            conn.execute("reset lock_timeout")
        holder.rollback()
    # Left to the holder (or the next call): measured against item a as it stands.
    assert room_row(conn, rid)["queue_item_id"] == a
    assert Decimal(str(reply["expected_time"])) > 100


def test_a_non_members_heartbeat_applies_nothing(conn):
    rid, a, _b = queue_room(conn, ["mio"])
    assert sqlstate(conn, "eve", BEAT, rid, 103) == "42501"
    assert room_row(conn, rid)["queue_item_id"] == a
    assert sqlstate(conn, "eve", BEAT, "no-such-room", 103) == "P0002"


def test_a_throttled_heartbeat_changes_nothing(conn):
    rid, _a, b = queue_room(conn, ["mio"])
    rpc(conn, "mio", BEAT, rid, 103)  # advanced; the next beat is too soon
    play_past_the_end(conn, rid, 3.0)  # b is over too
    assert sqlstate(conn, "mio", BEAT, rid, 203) == "WD429"
    # The refusal rolled back its transaction: the advance with it. The queue stays on b
    # (nothing after it would pause the room), and the next accepted call applies it.
    assert room_row(conn, rid)["queue_item_id"] == b


def test_an_advance_in_a_playing_room_starts_at_a_scheduled_start(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    add(conn, "hana", rid, 2, 100)
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 10)", rid)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", rid)
    row = conn.execute(
        "select is_playing, current_playback_time, playback_updated_at > clock_timestamp(),"
        " watchium_private.room_expected_position(r) from public.rooms as r where room_id = %s",
        (rid,),
    ).fetchone()
    assert row == (True, 0, True, 0)
    playback = [p for _, p in events(conn, rid, "playback")][-1]
    assert playback["action"] == "episode" and playback["playback_updated_at"] is not None


def test_an_advance_in_a_paused_room_takes_effect_at_once(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    add(conn, "hana", rid, 2, 100)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", rid)
    row = conn.execute(
        "select is_playing, playback_updated_at <= clock_timestamp() from public.rooms"
        " where room_id = %s",
        (rid,),
    ).fetchone()
    assert row == (False, True)
