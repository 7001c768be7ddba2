"""Latency-aware heartbeats (revision 0024): send time and RTT, the smoothed RTT and clock offset
per member, the drift corrected by the one-way delay while playing, implausible send times
ignored, the room's drift thresholds, and a wrong episode reported as such, never as drift."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.sync_factories import ROOM_ID, age, as_service, events, make_room, one
from watchium_db.testing import as_user

SINGLE = (
    "select public.record_heartbeat(%s, %s::numeric, %s, %s::numeric, %s::numeric, %s::integer)"
)
BATCH = (
    "select * from public.record_heartbeats(%s, %s::text[], %s::numeric[], %s::boolean[],"
    " %s::numeric[], %s::numeric[], %s::integer[])"
)


def beat(
    conn: psycopg.Connection[Any],
    user: str,
    position: Any,
    playing: bool = True,
    client_time: Any = None,
    rtt: Any = None,
    episode: Any = None,
) -> dict[str, Any]:
    with as_user(conn, user) as c:
        row = c.execute(SINGLE, (ROOM_ID, position, playing, client_time, rtt, episode)).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def relay(
    conn: psycopg.Connection[Any],
    beats: list[tuple[str, Any, bool, Any, Any, Any]],
) -> dict[str, dict[str, Any]]:
    columns = list(zip(*beats, strict=True))
    with as_service(conn) as c:
        cur = c.execute(
            BATCH,
            (ROOM_ID, list(columns[0]), [str(x) for x in columns[1]], list(columns[2]),
             list(columns[3]), list(columns[4]), list(columns[5])),
        )  # fmt: skip
        names = [d.name for d in cur.description or ()]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def presence(conn: psycopg.Connection[Any], user: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select rtt_ms, clock_offset_ms, reported_episode, sync_level, time_difference"
        " from watchium_private.member_presence where user_id = %s",
        (user,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def now_ms() -> float:
    return time.time() * 1000


def test_rtt_is_smoothed_with_weight_085_and_corrects_the_drift_while_playing(conn):
    make_room(conn, playing=True, position=100, speed=2)
    first = beat(conn, "alice", 50, rtt=100)
    # One-way delay 50 ms at speed 2: the member was 0.1 s further when the server read it.
    assert first["rtt_ms"] == 100 and first["reported_time"] == 50.1
    assert first["time_difference"] == float(
        round(abs(Decimal("50.10") - Decimal(str(first["expected_time"]))), 2)
    )
    age(conn, ROOM_ID, 5)
    second = beat(conn, "alice", 60, rtt=200)
    assert second["rtt_ms"] == 115  # 0.85 * 100 + 0.15 * 200
    assert second["reported_time"] == 60.12  # 57.5 ms * 2, rounded
    age(conn, ROOM_ID, 5)
    # No new sample: the smoothed RTT still corrects; paused: nothing to correct.
    assert beat(conn, "alice", 70)["rtt_ms"] == 115
    age(conn, ROOM_ID, 5)
    paused = beat(conn, "alice", 70, playing=False, rtt=1000)
    assert paused["reported_time"] == 70 and paused["rtt_ms"] == 247.8
    assert presence(conn, "alice")[0] == Decimal("247.8")


def test_implausible_client_times_are_ignored_and_said_so(conn):
    make_room(conn, playing=True, position=100)
    skewed = beat(conn, "alice", 100, client_time=now_ms() - 10_000)
    assert skewed["client_time_ignored"] is True
    assert skewed["reported_time"] == 100  # not moved by a 10 s "delay"
    assert skewed["clock_offset_ms"] > 2000
    assert presence(conn, "alice")[1] is None  # an ignored offset is not kept
    age(conn, ROOM_ID, 5)
    sane = beat(conn, "alice", 100, client_time=now_ms(), rtt=200)
    assert sane["client_time_ignored"] is False
    assert sane["reported_time"] == 100.1  # corrected by RTT / 2
    assert abs(sane["clock_offset_ms"]) <= 2000
    assert presence(conn, "alice")[1] == Decimal(str(sane["clock_offset_ms"]))
    # Without a send time nothing is ignored.
    age(conn, ROOM_ID, 5)
    assert beat(conn, "alice", 100)["client_time_ignored"] is False


def test_the_rooms_drift_thresholds_decide_the_level(conn):
    make_room(conn, playing=False, position=100)
    assert beat(conn, "alice", 103, playing=False)["sync_level"] == "out_of_sync"
    conn.execute(
        "update public.rooms set sync_drift_perfect = 1, sync_drift_good = 2, sync_drift_minor = 5"
    )
    age(conn, ROOM_ID, 5)
    wide = beat(conn, "alice", 103, playing=False)
    assert (wide["sync_level"], wide["is_synced"]) == ("minor_drift", True)
    age(conn, ROOM_ID, 5)
    assert beat(conn, "alice", 101.5, playing=False)["sync_level"] == "good"
    batched = relay(conn, [("bob", "103", False, None, None, None)])["bob"]
    assert (batched["sync_level"], batched["is_synced"]) == ("minor_drift", True)
    with as_user(conn, "alice") as c:
        state = c.execute("select public.get_room_sync_state(%s)", (ROOM_ID,)).fetchone()[0]
    assert state["me"]["sync_level"] == "good" and state["sync_options"]["drift_minor"] == 5
    assert state["stats"]["needs_resync_members"] == 0  # bob's 3 s is synced in this room


def test_a_wrong_episode_is_flagged_never_counted_as_drift(conn):
    make_room(conn, playing=False, position=100)  # the room plays episode 3
    conn.execute("delete from watchium_private.room_events")
    right = beat(conn, "alice", 100, playing=False, episode=3)
    assert right["episode_mismatch"] is False and right["sync_level"] == "perfect"
    age(conn, ROOM_ID, 5)
    wrong = beat(conn, "alice", 100, playing=False, episode=4)
    assert wrong["episode_mismatch"] is True and wrong["reason"] == "wrong_episode"
    assert wrong["sync_level"] == "wrong_episode" and wrong["is_synced"] is False
    assert wrong["time_difference"] is None  # no drift measured
    assert presence(conn, "alice")[2:] == (4, "wrong_episode", None)
    assert one(conn, "select is_synced from public.room_members where user_id = 'alice'") is False
    # Not sampled as drift: only the first heartbeat's sample is in the history.
    assert one(conn, "select count(*) from public.sync_states where user_id = 'alice'") == 1
    status = [p for _, p in events(conn, event="sync_status") if p["user_id"] == "alice"]
    assert status[-1]["reason"] == "wrong_episode" and status[-1]["time_difference"] is None
    with as_user(conn, "alice") as c:
        state = c.execute("select public.get_room_sync_state(%s)", (ROOM_ID,)).fetchone()[0]
        metrics = c.execute("select public.get_room_sync_metrics(%s)", (ROOM_ID,)).fetchone()[0]
    assert state["me"]["episode_mismatch"] is True and state["me"]["needs_resync"] is True
    assert metrics["wrong_episode_members"] == 1 and metrics["samples"] == 1
    # Throttled like any heartbeat, then back on the right episode.
    with pytest.raises(psycopg.Error) as throttled:
        beat(conn, "alice", 100, playing=False, episode=4)
    assert throttled.value.sqlstate == "WD429"
    age(conn, ROOM_ID, 5)
    back = beat(conn, "alice", 100.2, playing=False, episode=3)
    assert (back["sync_level"], back["episode_mismatch"]) == ("perfect", False)
    batched = relay(conn, [("bob", "100", False, None, None, 7)])["bob"]
    assert batched["episode_mismatch"] is True and batched["sync_level"] == "wrong_episode"
    assert batched["time_difference"] is None


def test_single_and_batched_heartbeats_agree_on_latency(conn):
    make_room(conn, playing=True, position=100, speed=1.5)
    for rtt in (80, 300, None, 40):
        single = beat(conn, "alice", 200, rtt=rtt)
        batched = relay(conn, [("bob", "200", True, None, rtt, None)])["bob"]
        assert batched["outcome"] == "ok"
        assert Decimal(str(single["rtt_ms"])) == batched["rtt_ms"]
        assert Decimal(str(single["reported_time"])) == batched["reported_time"]
        assert presence(conn, "alice")[:3] == presence(conn, "bob")[:3]
        age(conn, ROOM_ID, 5)


def test_metrics_report_rtt_and_clock_offset_per_member(conn):
    make_room(conn, playing=False, position=10)
    beat(conn, "alice", 10, playing=False, client_time=now_ms(), rtt=120)
    beat(conn, "bob", 10, playing=False, rtt=60)
    with as_user(conn, "host") as c:
        metrics = c.execute("select public.get_room_sync_metrics(%s)", (ROOM_ID,)).fetchone()[0]
    latency = {m["user_id"]: m for m in metrics["member_latency"]}
    assert latency["alice"]["rtt_ms"] == 120 and latency["alice"]["clock_offset_ms"] is not None
    assert latency["bob"]["rtt_ms"] == 60 and latency["bob"]["clock_offset_ms"] is None
    assert metrics["max_rtt_ms"] == 120 and metrics["avg_rtt_ms"] == 90


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ({"client_time": "NaN"}, "p_client_time"),
        ({"client_time": "Infinity"}, "p_client_time"),
        ({"client_time": -1}, "p_client_time"),
        ({"rtt": "NaN"}, "p_rtt_ms"),
        ({"rtt": -5}, "p_rtt_ms"),
        ({"rtt": 60001}, "p_rtt_ms"),
        ({"episode": 0}, "p_episode_number"),
    ],
)
def test_bad_latency_input_is_refused_by_name_and_nothing_is_stored(conn, args, name):
    make_room(conn)
    before = presence(conn, "alice")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        beat(conn, "alice", 0, **args)
    assert name in str(exc.value)
    assert presence(conn, "alice") == before


@pytest.mark.parametrize(
    ("column", "values", "name"),
    [
        (3, ["NaN", None], "p_client_times[1]"),
        (4, [None, "-1"], "p_rtts_ms[2]"),
        (5, [None, 0], "p_episode_numbers[2]"),
        (4, ["10"], "p_rtts_ms must be null or have one"),
    ],
)
def test_bad_batched_latency_input_is_refused_by_name(conn, column, values, name):
    make_room(conn)
    beats: list[list[Any]] = [
        ["alice", "0", False, None, None, None],
        ["bob", "0", False, None, None, None],
    ]
    columns = [list(c) for c in zip(*beats, strict=True)]
    columns[column] = values
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc, as_service(conn) as c:
        c.execute(BATCH, (ROOM_ID, columns[0], columns[1], columns[2], columns[3], columns[4],
                          columns[5]))  # fmt: skip
    assert name in str(exc.value)
    assert presence(conn, "alice")[3] is None  # nothing written
