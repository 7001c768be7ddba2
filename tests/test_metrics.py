"""Sync metrics over the last minute and client-side realtime metrics."""

from __future__ import annotations

import psycopg
import pytest

from tests.sync_factories import ROOM_ID, age, as_service, heartbeat, make_room, one
from watchium_db.testing import as_user

METRICS_CALL = "select public.record_realtime_metrics(%s, %s, %s, %s::numeric, %s::numeric)"


def test_sync_metrics_over_the_last_minute(conn):
    members = [f"m{i}" for i in range(9)]
    make_room(conn, playing=False, position=100, members=members)
    # 7 members within 2 s, 3 (two members and the host) far out.
    times = {
        "m0": 100,
        "m1": 100.4,
        "m2": 101,
        "m3": 99,
        "m4": 101.5,
        "m5": 98.5,
        "m6": 100,
        "m7": 110,
        "m8": 130,
        "host": 105,
    }
    for user, t in times.items():
        heartbeat(conn, user, t, is_playing=False)
    # An old sample (older than a minute) must not count.
    conn.execute(
        "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
        " is_synced, sync_event_type, created_at)"
        " values (%s, 'm0', 0, 500, 500, false, 'heartbeat', now() - interval '2 minutes')",
        (ROOM_ID,),
    )
    with as_user(conn, "m0") as c:
        metrics = one(c, "select public.get_room_sync_metrics(%s)", (ROOM_ID,))
    drifts = sorted(float(abs(t - 100)) for t in times.values())
    assert metrics["samples"] == 10
    assert metrics["avg_drift"] == pytest.approx(round(sum(drifts) / 10, 2))
    assert metrics["max_drift"] == 30
    assert metrics["p95_drift"] == pytest.approx(
        one(
            conn,
            "select round(percentile_cont(0.95) within group (order by d)::numeric, 2)"
            " from unnest(%s::numeric[]) d",
            (drifts,),
        )
    )
    assert metrics["reporting_members"] == 10 and metrics["members"] == 10
    assert metrics["synced_members"] == 7 and metrics["out_of_sync_members"] == 3
    assert metrics["sync_percentage"] == 70.0 and metrics["healthy"] is False


def test_room_at_80_percent_is_healthy_and_silent_room_is_unknown(conn):
    make_room(conn, playing=False, position=0, members=["a", "b", "c", "d"])
    with as_user(conn, "a") as c:
        assert one(c, "select public.get_room_sync_metrics(%s)", (ROOM_ID,))["healthy"] is None
    for user, t in {"a": 0, "b": 0, "c": 0, "d": 0, "host": 9}.items():
        heartbeat(conn, user, t, is_playing=False)
    with as_user(conn, "a") as c:
        metrics = one(c, "select public.get_room_sync_metrics(%s)", (ROOM_ID,))
    assert metrics["sync_percentage"] == 80.0 and metrics["healthy"] is True


def test_members_not_reported_since_a_control_are_resyncing_not_unhealthy(conn):
    make_room(conn, playing=False, position=0, members=["a", "b", "c", "d"])
    for user, t in {"a": 0, "b": 0, "c": 0, "d": 9, "host": 0}.items():
        heartbeat(conn, user, t, is_playing=False)
    with as_user(conn, "host") as c:
        c.execute("select public.seek_to_time(%s, 100)", (ROOM_ID,))
    with as_user(conn, "a") as c:
        metrics = one(c, "select public.get_room_sync_metrics(%s)", (ROOM_ID,))
    # Everyone but the host reported before the seek: resyncing, so nothing is measured but
    # the host (which set the reference).
    assert metrics["reporting_members"] == 5 and metrics["resyncing_members"] == 4
    assert metrics["synced_members"] == 1 and metrics["out_of_sync_members"] == 0
    assert metrics["sync_percentage"] == 100.0 and metrics["healthy"] is True
    age(conn, ROOM_ID, 5)
    for user, t in {"a": 100, "b": 100, "c": 90, "d": 100}.items():
        heartbeat(conn, user, t, is_playing=False)
    with as_user(conn, "a") as c:
        metrics = one(c, "select public.get_room_sync_metrics(%s)", (ROOM_ID,))
    assert metrics["resyncing_members"] == 0 and metrics["out_of_sync_members"] == 1
    assert metrics["synced_members"] == 4 and metrics["sync_percentage"] == 80.0


def test_sync_metrics_are_for_members(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "mallory") as c:
        c.execute("select public.get_room_sync_metrics(%s)", (ROOM_ID,))
    assert exc.value.sqlstate == "42501"
    with as_service(conn) as c:
        assert one(c, "select public.get_room_sync_metrics(%s)", (ROOM_ID,))["room_id"] == ROOM_ID


def test_record_realtime_metrics_and_summary(conn):
    make_room(conn, members=["alice", "bob"])
    with as_user(conn, "alice") as c:
        c.execute(METRICS_CALL, (ROOM_ID, 1, 90, "100", "0.1"))  # superseded by her next report
        c.execute(METRICS_CALL, (ROOM_ID, 1, 100, "50", "0.02"))
    with as_user(conn, "bob") as c:
        c.execute(METRICS_CALL, (ROOM_ID, 2, 300, "150", "0.1"))
    with as_user(conn, "alice") as c:
        summary = one(c, "select public.get_realtime_metrics_summary(%s)", (ROOM_ID,))
    assert summary["reporters"] == 2
    assert summary["active_connections"] == 3
    assert summary["total_events"] == 400
    assert summary["avg_latency_ms"] == 125  # (50*100 + 150*300) / 400
    assert summary["error_rate"] == 0.08  # (0.02*100 + 0.1*300) / 400


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ((-1, 0, "0", "0"), "p_active_connections"),
        ((1, -5, "0", "0"), "p_total_events"),
        ((1, 0, "NaN", "0"), "p_avg_latency_ms"),
        ((1, 0, "Infinity", "0"), "p_avg_latency_ms"),
        ((1, 0, "-1", "0"), "p_avg_latency_ms"),
        ((1, 0, "10", "NaN"), "p_error_rate"),
        ((1, 0, "10", "1.5"), "p_error_rate"),
        ((1, 0, "10", None), "p_error_rate"),
    ],
)
def test_realtime_metrics_are_validated(conn, args, argument):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(METRICS_CALL, (ROOM_ID, *args))
    assert exc.value.sqlstate == "22023" and argument in str(exc.value)


def test_realtime_metrics_member_only_and_rate_limited(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "mallory") as c:
        c.execute(METRICS_CALL, (ROOM_ID, 1, 1, "1", "0"))
    assert exc.value.sqlstate == "42501"
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "mallory") as c:
        c.execute("select public.get_realtime_metrics_summary(%s)", (ROOM_ID,))
    assert exc.value.sqlstate == "42501"
    conn.execute(
        "update watchium_private.rate_limit_rules set max_requests = 1 where action = 'realtime_metrics'"
    )
    with as_user(conn, "alice") as c:
        c.execute(METRICS_CALL, (ROOM_ID, 1, 1, "1", "0"))
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(METRICS_CALL, (ROOM_ID, 1, 1, "1", "0"))
    assert exc.value.sqlstate == "WD429"
    assert one(conn, "select count(*) from watchium_private.realtime_metrics") == 1


def test_old_realtime_metrics_expire_with_maintenance(conn):
    make_room(conn)
    conn.execute(
        "insert into watchium_private.realtime_metrics (room_id, user_id, active_connections,"
        " total_events, avg_latency_ms, error_rate, recorded_at)"
        " values (%s, 'alice', 1, 1, 1, 0, now() - interval '2 days'), (%s, 'bob', 1, 1, 1, 0, now())",
        (ROOM_ID, ROOM_ID),
    )
    result = one(conn, "select watchium_private.maintain_sync_history()")
    assert result["metrics_expired"] == 1
    assert one(conn, "select user_id from watchium_private.realtime_metrics") == "bob"
