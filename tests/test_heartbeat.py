"""Presence heartbeats: extrapolated host position, drift levels, the cheap write path, sampling."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from psycopg import errors

from tests.sync_factories import (
    BATCH_SQL,
    ROOM_ID,
    add_members,
    age,
    as_service,
    batch,
    batch_arguments,
    events,
    heartbeat,
    make_room,
    one,
)
from watchium_db.testing import as_user


def test_member_at_extrapolated_position_is_perfectly_in_sync(conn):
    """After 10 s of playback at speed 1.5 from 100 s, the host is at 115 s, not 100 s."""
    make_room(conn, playing=True, position=100, speed=1.5)
    with conn.transaction():
        # Same transaction as the heartbeat: now() is the same instant, so elapsed is exactly 10 s.
        conn.execute(
            "update public.rooms set playback_updated_at = now() - interval '10 seconds'"
            " where room_id = %s",
            (ROOM_ID,),
        )
        with as_user(conn, "alice") as c:
            status = one(c, "select public.record_heartbeat(%s, 115, true)", (ROOM_ID,))
    assert status["expected_time"] == 115
    assert status["time_difference"] == 0
    assert status["sync_level"] == "perfect" and status["is_synced"] is True
    # The stale stored number would have called this member 15 s out of sync.
    assert one(conn, "select current_playback_time from public.rooms") == 100


def test_member_at_stored_position_while_playing_is_out_of_sync(conn):
    make_room(conn, playing=True, position=100, speed=1.5)
    with conn.transaction():
        conn.execute("update public.rooms set playback_updated_at = now() - interval '10 seconds'")
        with as_user(conn, "alice") as c:
            status = one(c, "select public.record_heartbeat(%s, 100, true)", (ROOM_ID,))
    assert status["time_difference"] == 15
    assert status["sync_level"] == "out_of_sync" and status["is_synced"] is False


def test_expected_position_is_capped_at_24_hours(conn):
    make_room(conn, playing=True, position=86390, speed=4)
    conn.execute("update public.rooms set playback_updated_at = now() - interval '1 hour'")
    assert one(
        conn, "select watchium_private.room_expected_position(r) from public.rooms r"
    ) == Decimal("86400.00")


@pytest.mark.parametrize(
    ("member_time", "difference", "level", "synced"),
    [
        ("100.00", "0.00", "perfect", True),
        ("100.50", "0.50", "perfect", True),
        ("99.49", "0.51", "good", True),
        ("101.00", "1.00", "good", True),
        ("101.01", "1.01", "minor_drift", True),
        ("98.00", "2.00", "minor_drift", True),
        ("102.01", "2.01", "out_of_sync", False),
    ],
)
def test_drift_level_boundaries(conn, member_time, difference, level, synced):
    make_room(conn, playing=False, position=100)
    status = heartbeat(conn, "alice", member_time, is_playing=False)
    assert Decimal(str(status["time_difference"])) == Decimal(difference)
    assert (status["sync_level"], status["is_synced"]) == (level, synced)
    presence = conn.execute(
        "select sync_level, time_difference from watchium_private.member_presence"
        " where user_id = 'alice'"
    ).fetchone()
    assert presence == (level, Decimal(difference))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "p_current_time must be a finite number"),
        ("Infinity", "p_current_time must be a finite number"),
        ("-Infinity", "p_current_time must be a finite number"),
        ("-0.01", "p_current_time must be >= 0"),
        ("86400.01", "p_current_time must be <= 86400"),
        (None, "p_current_time must be a number of seconds, not null"),
    ],
)
def test_bad_times_are_rejected_with_22023(conn, value, message):
    make_room(conn)
    with pytest.raises(errors.InvalidParameterValue) as exc:
        heartbeat(conn, "alice", value)
    assert exc.value.sqlstate == "22023"
    assert message in str(exc.value)
    assert (
        one(
            conn,
            "select last_sample_at from watchium_private.member_presence where user_id = 'alice'",
        )
        is None
    )


def test_non_member_and_anonymous_callers_are_refused(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc:
        heartbeat(conn, "mallory", 0)
    assert exc.value.sqlstate == "42501" and "not a member" in str(exc.value)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, None, role="anon") as c:
        c.execute("select public.record_heartbeat(%s, 0, true)", (ROOM_ID,))
    assert exc.value.sqlstate == "42501"  # anon has no EXECUTE
    with pytest.raises(psycopg.Error) as exc:
        heartbeat(conn, "alice", 0, room_id="nosuchroom")
    assert exc.value.sqlstate == "P0002"


def test_heartbeat_faster_than_minimum_interval_is_rejected_without_a_write(conn):
    make_room(conn)
    heartbeat(conn, "alice", 0, is_playing=False)
    before = conn.execute(
        "select last_heartbeat, reported_time from watchium_private.member_presence where user_id = 'alice'"
    ).fetchone()
    with pytest.raises(psycopg.Error) as exc:
        heartbeat(conn, "alice", 5, is_playing=False)
    assert exc.value.sqlstate == "WD429"
    after = conn.execute(
        "select last_heartbeat, reported_time from watchium_private.member_presence where user_id = 'alice'"
    ).fetchone()
    assert after == before
    # No counter row either: the limit is the presence row itself.
    assert (
        one(
            conn,
            "select count(*) from watchium_private.rate_limit_counters where subject = 'alice'",
        )
        == 0
    )


def test_heartbeat_is_a_hot_presence_update_and_touches_no_published_row(conn):
    make_room(conn, members=["alice", "bob", "carol", "dave"])
    heartbeat(conn, "alice", 0, is_playing=False)  # first heartbeats establish the level
    age(conn, ROOM_ID, 5)
    stats_sql = (
        "select relname, n_tup_upd, n_tup_hot_upd, n_tup_ins from pg_stat_xact_user_tables"
        " where relname in ('member_presence', 'rooms', 'room_members', 'sync_states_default')"
    )
    with conn.transaction():
        # pg_stat_xact_* also holds the session's not yet flushed counts: compare before/after.
        before = {r[0]: r[1:] for r in conn.execute(stats_sql).fetchall()}
        rooms_before = one(conn, "select xmin::text from public.rooms")
        with as_user(conn, "alice") as c:
            c.execute("select public.record_heartbeat(%s, 0.2, false)", (ROOM_ID,))
        after = {r[0]: r[1:] for r in conn.execute(stats_sql).fetchall()}
        assert one(conn, "select xmin::text from public.rooms") == rooms_before

    def delta(name: str) -> tuple[int, int, int]:
        a, b = after.get(name, (0, 0, 0)), before.get(name, (0, 0, 0))
        return (a[0] - b[0], a[1] - b[1], a[2] - b[2])

    assert delta("member_presence") == (1, 1, 0)  # one update, and it is HOT
    assert delta("rooms") == (0, 0, 0)
    assert delta("room_members") == (0, 0, 0)
    assert delta("sync_states_default") == (0, 0, 0)  # level unchanged, sampled recently


def test_heartbeat_does_not_wait_for_the_room_row_lock(conn, watchium_db_url):
    make_room(conn)
    with psycopg.connect(watchium_db_url) as locker:
        locker.execute("select 1 from public.rooms where room_id = %s for update", (ROOM_ID,))
        conn.execute("set lock_timeout = '2s'")
        status = heartbeat(conn, "alice", 0, is_playing=False)
        locker.rollback()
    assert status["sync_level"] == "perfect"


def test_published_snapshot_and_events_change_only_on_transitions(conn):
    make_room(conn, playing=False, position=100)
    conn.execute("delete from watchium_private.room_events")
    published = (
        "select is_synced, current_playback_time from public.room_members where user_id = 'alice'"
    )

    heartbeat(conn, "alice", 100, is_playing=False)  # first level: perfect (a transition from none)
    assert conn.execute(published).fetchone() == (True, 0)  # still synced: no published write
    age(conn, ROOM_ID, 3)
    heartbeat(conn, "alice", 100.2, is_playing=False)  # perfect again: nothing to tell
    assert len(events(conn, event="sync_status")) == 1

    age(conn, ROOM_ID, 3)
    heartbeat(conn, "alice", 105, is_playing=False)  # out of sync: published + event
    assert conn.execute(published).fetchone() == (False, Decimal("105.00"))
    age(conn, ROOM_ID, 3)
    heartbeat(conn, "alice", 106, is_playing=False)  # still out of sync
    age(conn, ROOM_ID, 3)
    heartbeat(conn, "alice", 100, is_playing=False)  # back in sync
    assert conn.execute(published).fetchone() == (True, Decimal("100.00"))

    status_events = events(conn, event="sync_status")
    assert [p["sync_level"] for _, p in status_events] == ["perfect", "out_of_sync", "perfect"]
    assert status_events[1][1]["previous_level"] == "perfect"


def test_heartbeat_history_is_sampled(conn):
    """At a 3 s cadence with a steady level, at most 1 in 20 heartbeats writes a history row."""
    make_room(conn, playing=False, position=50)
    history = "select count(*) from public.sync_states where sync_event_type = 'heartbeat'"
    beats = 60
    for _ in range(beats):
        heartbeat(conn, "alice", 50.1, is_playing=False)
        age(conn, ROOM_ID, 3)
    samples = one(conn, history)
    # 180 s of heartbeats: the first one, then one per 60 s.
    assert samples == 3
    assert samples / beats <= 0.05
    # A level change is always sampled.
    heartbeat(conn, "alice", 60, is_playing=False)
    assert one(conn, history) == 4
    # "How in sync was this room over the last minute" is answerable from the samples.
    assert (
        one(
            conn,
            "select count(*) from public.sync_states where room_id = %s and created_at > now() - interval '1 minute'",
            (ROOM_ID,),
        )
        >= 1
    )


def test_batched_heartbeats_for_an_edge_server(conn):
    make_room(conn, playing=False, position=10, members=["alice", "bob", "carol"])
    heartbeat(conn, "carol", 10, is_playing=False)  # carol just reported: throttled in the batch
    result = batch(
        conn,
        [
            ("alice", 10.3, False),
            ("bob", 25, False),
            ("carol", 10, False),
            ("stranger", 10, False),
        ],
    )
    assert list(result) == ["alice", "bob", "carol", "stranger"]  # user id order
    outcome = {u: (r["outcome"], r["sync_level"]) for u, r in result.items()}
    assert outcome["alice"] == ("ok", "perfect")
    assert outcome["bob"] == ("ok", "out_of_sync")
    assert outcome["carol"][0] == "throttled"
    assert outcome["stranger"][0] == "not_member"
    assert result["bob"]["time_difference"] == 15 and result["bob"]["is_synced"] is False
    assert conn.execute(
        "select user_id, reported_time from watchium_private.member_presence"
        " where user_id in ('alice', 'bob') order by user_id"
    ).fetchall() == [("alice", Decimal("10.30")), ("bob", Decimal("25.00"))]
    assert one(conn, "select is_synced from public.room_members where user_id = 'bob'") is False


def test_single_and_batched_heartbeats_write_the_same(conn):
    """Two write paths, one behaviour: presence, history, published flag and events agree."""
    members = ["alice", "bob"]
    presence = (
        "select reported_time, is_playing, time_difference, sync_level, previous_sync_level,"
        " last_sample_at is not null from watchium_private.member_presence where user_id = %s"
    )
    history = (
        "select host_time, member_time, time_difference, is_synced from public.sync_states"
        " where user_id = %s and sync_event_type = 'heartbeat' order by created_at"
    )
    published = "select is_synced, current_playback_time from public.room_members where user_id = %s"
    make_room(conn, playing=False, position=100, members=members)
    conn.execute("delete from watchium_private.room_events")
    for position in ("100.4", "100.9", "101.5", "103", "99.2", "99.2"):
        single = heartbeat(conn, "alice", position, is_playing=False)
        relayed = batch(conn, [("bob", position, False)])["bob"]
        assert relayed["outcome"] == "ok"
        assert Decimal(str(single["time_difference"])) == relayed["time_difference"]
        assert Decimal(str(single["expected_time"])) == relayed["expected_time"]
        assert (single["is_synced"], single["sync_level"]) == (
            relayed["is_synced"],
            relayed["sync_level"],
        )
        assert conn.execute(presence, ("alice",)).fetchone() == conn.execute(
            presence, ("bob",)
        ).fetchone()
        assert conn.execute(published, ("alice",)).fetchone() == conn.execute(
            published, ("bob",)
        ).fetchone()
        age(conn, ROOM_ID, 3)
    assert conn.execute(history, ("alice",)).fetchall() == conn.execute(
        history, ("bob",)
    ).fetchall()
    by_member: dict[str, list[tuple[str, str | None]]] = {"alice": [], "bob": []}
    for _, payload in events(conn, event="sync_status"):
        by_member[payload["user_id"]].append((payload["sync_level"], payload["previous_level"]))
    assert by_member["alice"] == by_member["bob"]
    assert [level for level, _ in by_member["alice"]] == [
        "perfect", "good", "minor_drift", "out_of_sync", "good",
    ]


def test_batched_heartbeats_are_service_role_only(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(BATCH_SQL, batch_arguments([("bob", 1, True)]))
    assert exc.value.sqlstate == "42501"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((ROOM_ID, [], [], []), "p_user_ids must be an array of 1 to 1000 user ids (got 0)"),
        ((ROOM_ID, None, ["1"], [True]), "p_user_ids must be an array of 1 to 1000"),
        ((ROOM_ID, ["alice"] * 1001, ["1"] * 1001, [True] * 1001), "(got 1001)"),
        (
            (ROOM_ID, ["alice", "bob"], ["1"], [True, True]),
            "p_current_times must have one time per user id (2 expected, got 1)",
        ),
        (
            (ROOM_ID, ["alice"], ["1"], None),
            "p_is_playing must have one flag per user id (1 expected, got null)",
        ),
        (
            (ROOM_ID, ["alice"], ["NaN"], [True]),
            "p_current_times[1] must be a number of seconds from 0 to 86400 (got NaN)",
        ),
        ((ROOM_ID, ["alice"], ["Infinity"], [True]), "p_current_times[1] must be a number"),
        (
            (ROOM_ID, ["alice", "bob"], ["1", "-1"], [True, True]),
            "p_current_times[2] must be a number of seconds from 0 to 86400 (got -1)",
        ),
        ((ROOM_ID, ["alice"], ["86400.01"], [True]), "from 0 to 86400 (got 86400.01)"),
        ((ROOM_ID, ["alice"], [None], [True]), "p_current_times[1] must be a number"),
        (
            (ROOM_ID, ["alice"], ["1"], [None]),
            "p_is_playing[1] must be true or false, not null",
        ),
        ((ROOM_ID, [""], ["1"], [True]), "p_user_ids[1] must be a user id of 1 to 100"),
        ((ROOM_ID, [None], ["1"], [True]), "p_user_ids[1] must be a user id"),
        ((ROOM_ID, ["x" * 101], ["1"], [True]), "p_user_ids[1] must be a user id"),
        (
            (ROOM_ID, ["alice", "bob", "alice"], ["1", "2", "3"], [True] * 3),
            "p_user_ids[1]: 'alice' appears more than once",
        ),
    ],
)
def test_batched_heartbeats_validate_every_element(conn, arguments, message):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_service(conn) as c:
        c.execute(BATCH_SQL, arguments)
    assert exc.value.sqlstate == "22023"
    assert message in str(exc.value)
    assert one(conn, "select count(*) from watchium_private.member_presence"
               " where last_sample_at is not null") == 0


def test_batched_heartbeats_name_a_missing_room(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc:
        batch(conn, [("alice", 1, True)], room_id="nosuchroom")
    assert exc.value.sqlstate == "P0002" and "nosuchroom" in str(exc.value)


def test_batched_heartbeats_are_rate_limited_per_member_without_a_write(conn):
    make_room(conn, members=["alice", "bob"])
    first = batch(conn, [("alice", 0, False), ("bob", 0, False)])
    assert {r["outcome"] for r in first.values()} == {"ok"}
    presence = (
        "select user_id, last_heartbeat, reported_time from watchium_private.member_presence"
        " order by user_id"
    )
    before = conn.execute(presence).fetchall()
    # A relay flooding the same members: every one comes back throttled, nothing is written.
    for _ in range(3):
        again = batch(conn, [("alice", 5, False), ("bob", 5, False)])
        assert {r["outcome"] for r in again.values()} == {"throttled"}
    assert conn.execute(presence).fetchall() == before
    assert one(conn, "select count(*) from watchium_private.rate_limit_counters") == 0
    # Once heartbeat_min_interval has passed, the members are accepted again.
    age(conn, ROOM_ID, 3)
    later = batch(conn, [("alice", 5, False), ("bob", 5, False)])
    assert {r["outcome"] for r in later.values()} == {"ok"}


def test_heartbeat_skips_a_locked_member_row_and_repairs_it_next_time(conn, watchium_db_url):
    """A leave locks room_members before its presence row: a heartbeat must not wait for it."""
    make_room(conn, playing=False, position=100)
    published = "select is_synced from public.room_members where user_id = 'alice'"
    with psycopg.connect(watchium_db_url) as locker:
        locker.execute("select 1 from public.room_members where user_id = 'alice' for update")
        conn.execute("set lock_timeout = '2s'")
        status = heartbeat(conn, "alice", 150, is_playing=False)  # flips to out of sync
        locker.rollback()
    assert status["is_synced"] is False
    assert one(conn, published) is True  # skipped, not waited for
    age(conn, ROOM_ID, 3)
    heartbeat(conn, "alice", 151, is_playing=False)  # same level: still repairs the flag
    assert one(conn, published) is False


def test_controls_and_batched_heartbeats_run_concurrently_without_deadlock(conn, watchium_db_url):
    import threading

    members = [f"m{i:02d}" for i in range(40)]
    make_room(conn, playing=False, position=0, members=members)
    conn.execute(
        "update watchium_private.settings set value = '\"0 seconds\"' where key = 'heartbeat_min_interval'"
    )
    failures: list[BaseException] = []

    def controls() -> None:
        try:
            with psycopg.connect(watchium_db_url, autocommit=True) as c:
                for i in range(15):
                    with as_user(c, "host") as h:
                        h.execute("select public.seek_to_time(%s, %s)", (ROOM_ID, i % 2 * 10))
        except BaseException as exc:
            failures.append(exc)

    def relay(order: list[str]) -> None:
        try:
            with psycopg.connect(watchium_db_url, autocommit=True) as c:
                for i in range(40):
                    beats = [(u, i % 3 * 5, False) for u in order]
                    with as_service(c) as s:
                        s.execute(BATCH_SQL, batch_arguments(beats))
        except BaseException as exc:
            failures.append(exc)

    conn.execute("update watchium_private.rate_limit_rules set max_requests = 1000")
    threads = [
        threading.Thread(target=controls),
        threading.Thread(target=relay, args=(members,)),
        threading.Thread(target=relay, args=(list(reversed(members)),)),
        # Interleaved: rows of two relays meet in every order, and HOT updates move row
        # versions around the heap (a heap-order scan once deadlocked two relays here).
        threading.Thread(target=relay, args=(members[1::2] + members[::2],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert (
        one(conn, "select count(*) from public.sync_records where sync_event_type = 'seek'")
        == 15 * 41
    )


def test_first_heartbeat_right_after_joining_is_accepted(conn):
    make_room(conn)
    add_members(conn, ROOM_ID, ["newbie"])  # presence.last_heartbeat = the join, just now
    assert heartbeat(conn, "newbie", 0, is_playing=False)["sync_level"] == "perfect"
    with pytest.raises(psycopg.Error) as exc:
        heartbeat(conn, "newbie", 0, is_playing=False)
    assert exc.value.sqlstate == "WD429"
