"""Host controls and bulk_sync_update: host only, validated, one history row per member."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from tests.sync_factories import (
    ROOM_ID,
    add_members,
    age,
    as_service,
    events,
    heartbeat,
    make_room,
    one,
)
from watchium_db.testing import as_user

CONTROLS = [
    ("select public.change_playback_state(%s, true, 10)", "play"),
    ("select public.change_playback_state(%s, false)", "pause"),
    ("select public.seek_to_time(%s, 42)", "seek"),
    ("select public.set_playback_speed(%s, 1.5)", "speed"),
]


@pytest.mark.parametrize(("sql", "action"), CONTROLS)
def test_only_the_host_controls_playback(conn, sql, action):
    make_room(conn)
    for user in ("alice", "mallory"):  # a member who is not host, a stranger
        with pytest.raises(psycopg.Error) as exc, as_user(conn, user) as c:
            c.execute(sql, (ROOM_ID,))
        assert exc.value.sqlstate == "42501", (user, action)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, None, role="anon") as c:
        c.execute(sql, (ROOM_ID,))
    assert exc.value.sqlstate == "42501"  # no EXECUTE for anon
    assert one(conn, "select count(*) from public.sync_states") == 0
    assert events(conn, event="playback") == []
    with as_user(conn, "host") as c:
        state = one(c, sql, (ROOM_ID,))
    assert state["action"] == action


def test_host_id_argument_cannot_be_faked_by_claims_of_another_role(conn):
    make_room(conn)
    with (
        pytest.raises(psycopg.Error) as exc,
        as_user(conn, "alice", claims={"user_id": "host"}) as c,
    ):
        c.execute("select public.seek_to_time(%s, 5)", (ROOM_ID,))
    assert exc.value.sqlstate == "42501"


def test_play_resets_the_reference_and_writes_one_record_per_member(conn):
    make_room(conn, members=["alice", "bob", "carol"])
    conn.execute(
        "update public.rooms set playback_updated_at = now() - interval '1 hour',"
        " last_activity = now() - interval '1 hour'"
    )
    with as_user(conn, "host") as c:
        state = one(c, "select public.change_playback_state(%s, true, 12.345)", (ROOM_ID,))
        now = one(c, "select now()")
        after = one(c, "select clock_timestamp()")
    assert state["is_playing"] is True and state["current_time"] == 12.35
    assert state["sync"]["members"] == 4 and state["sync"]["synced_members"] == 1
    room = conn.execute(
        "select is_playing, current_playback_time, playback_updated_at, last_activity from public.rooms"
    ).fetchone()
    assert room is not None and room[:2] == (True, Decimal("12.35")) and room[3] == now
    # A play is a scheduled start: the reference is the moment of the change plus the room's
    # minimum start lead (0.5 s), within this transaction.
    assert now + timedelta(milliseconds=500) <= room[2] <= after + timedelta(milliseconds=500)
    rows = conn.execute(
        "select user_id, host_time, sync_event_type from public.sync_records order by user_id"
    ).fetchall()
    assert [r[0] for r in rows] == ["alice", "bob", "carol", "host"]
    assert {(r[1], r[2]) for r in rows} == {(Decimal("12.35"), "play_pause")}
    playback = events(conn, event="playback")
    assert len(playback) == 1 and playback[0][1]["action"] == "play"


def test_a_control_within_a_minute_of_the_last_activity_is_a_hot_update(conn):
    # last_activity (in the listing indexes) moves only when older than a minute, so the room
    # UPDATE of a control changes no indexed column and stays on its page (HOT).
    make_room(conn)
    conn.execute("update public.rooms set last_activity = now() - interval '30 seconds'")
    before = one(conn, "select last_activity from public.rooms")
    counts = (
        "select pg_stat_get_xact_tuples_updated('public.rooms'::regclass),"
        " pg_stat_get_xact_tuples_hot_updated('public.rooms'::regclass)"
    )
    with as_user(conn, "host") as c:
        updated0, hot0 = c.execute(counts).fetchone()
        one(c, "select public.seek_to_time(%s, 42)", (ROOM_ID,))
        updated1, hot1 = c.execute(counts).fetchone()
    assert (updated1 - updated0, hot1 - hot0) == (1, 1)
    room = conn.execute("select last_activity, current_playback_time from public.rooms").fetchone()
    assert room == (before, Decimal("42.00"))


def test_pause_without_time_pauses_at_the_expected_position(conn):
    make_room(conn, playing=True, position=100, speed=2)
    with conn.transaction():
        conn.execute("update public.rooms set playback_updated_at = now() - interval '5 seconds'")
        with as_user(conn, "host") as c:
            state = one(c, "select public.change_playback_state(%s, false)", (ROOM_ID,))
    # 100 + 5 s x 2, plus the few milliseconds between the statements (the pause is dated
    # when it happens).
    assert state["is_playing"] is False and 110 <= state["current_time"] < 110.5


ROW_VERSIONS = (
    "select 'presence', user_id, xmin::text, xmax::text from watchium_private.member_presence"
    " union all"
    " select 'member', user_id, xmin::text, xmax::text from public.room_members"
    " order by 1, 2"
)


def test_seek_writes_no_member_row_and_needing_resync_is_derived(conn):
    make_room(conn, playing=False, position=100, members=["alice", "bob"])
    heartbeat(conn, "alice", 100, is_playing=False)
    heartbeat(conn, "bob", 100, is_playing=False)
    conn.execute("delete from watchium_private.room_events")
    with as_user(conn, "host") as c:
        state = one(c, "select public.seek_to_time(%s, 101.5)", (ROOM_ID,))
    assert state["sync"]["out_of_sync_members"] == 0  # 1.5 s: still synced
    before = conn.execute(ROW_VERSIONS).fetchall()
    with as_user(conn, "host") as c:
        state = one(c, "select public.seek_to_time(%s, 500)", (ROOM_ID,))
    assert state["sync"]["out_of_sync_members"] == 2 and state["sync"]["synced_members"] == 1
    # No presence or room_members row was updated or even locked (xmax would change).
    assert conn.execute(ROW_VERSIONS).fetchall() == before
    history = conn.execute(
        "select user_id, member_time, time_difference, is_synced from public.sync_records"
        " where sync_event_type = 'seek' and host_time = 500 order by user_id"
    ).fetchall()
    assert history == [
        ("alice", Decimal("100.00"), Decimal("400.00"), False),
        ("bob", Decimal("100.00"), Decimal("400.00"), False),
        ("host", Decimal("500.00"), Decimal("0.00"), True),
    ]
    # One playback event per control, no per-member event.
    assert [e for e, _ in events(conn)] == ["playback", "playback"]

    # Both members' last heartbeats predate the new reference: both need to resync.
    with as_user(conn, "alice") as c:
        live = one(c, "select public.get_room_sync_state(%s)", (ROOM_ID,))
    assert live["me"]["needs_resync"] is True
    assert live["stats"]["synced_members"] == 1 and live["stats"]["needs_resync_members"] == 2

    # alice follows, bob does not: the published flag flips on bob's next heartbeat only.
    age(conn, ROOM_ID, 5)
    heartbeat(conn, "alice", 500, is_playing=False)
    heartbeat(conn, "bob", 100, is_playing=False)
    with as_user(conn, "alice") as c:
        live = one(c, "select public.get_room_sync_state(%s)", (ROOM_ID,))
    assert live["me"]["needs_resync"] is False
    assert live["stats"]["synced_members"] == 2 and live["stats"]["needs_resync_members"] == 1
    assert conn.execute(
        "select user_id, is_synced from public.room_members order by user_id"
    ).fetchall() == [("alice", True), ("bob", False), ("host", True)]
    status = [(p["user_id"], p["sync_level"]) for _, p in events(conn, event="sync_status")]
    assert status == [("bob", "out_of_sync")]


def test_control_estimates_members_from_their_last_heartbeat(conn):
    make_room(conn, playing=True, position=100, speed=2, members=["alice", "bob"])
    with conn.transaction():
        # alice played from 100 four seconds ago at the old speed 2: now at 108;
        # bob is paused at 50.25; the host is where its control puts the room.
        conn.execute(
            "update watchium_private.member_presence set reported_time = 100, is_playing = true,"
            " last_heartbeat = now() - interval '4 seconds' where user_id = 'alice'"
        )
        conn.execute(
            "update watchium_private.member_presence set reported_time = 50.25, is_playing = false"
            " where user_id = 'bob'"
        )
        with as_user(conn, "host") as c:
            state = one(c, "select public.set_playback_speed(%s, 1)", (ROOM_ID,))
    history = conn.execute(
        "select user_id, host_time, member_time, time_difference, is_synced from public.sync_records"
        " order by user_id"
    ).fetchall()
    host_time = Decimal(str(state["current_time"]))
    assert history == [
        ("alice", host_time, Decimal("108.00"), abs(host_time - 108), abs(host_time - 108) <= 2),
        ("bob", host_time, Decimal("50.25"), abs(host_time - Decimal("50.25")), False),
        ("host", host_time, host_time, Decimal("0.00"), True),
    ]


def test_speed_change_keeps_the_position_and_extrapolates_at_the_new_speed(conn):
    make_room(conn, playing=True, position=10, speed=1)
    with conn.transaction():
        conn.execute("update public.rooms set playback_updated_at = now() - interval '4 seconds'")
        with as_user(conn, "host") as c:
            state = one(c, "select public.set_playback_speed(%s, 2)", (ROOM_ID,))
    # 10 + 4 s x 1, plus the milliseconds until the change (it is dated when it happens).
    assert 14 <= state["current_time"] < 14.5 and state["playback_speed"] == 2
    # 3 s later at speed 2: 6 s further than the position the change stored (14 and the
    # milliseconds it took, 14.01 when they round up).
    with conn.transaction():
        conn.execute("update public.rooms set playback_updated_at = now() - interval '3 seconds'")
        assert (
            one(conn, "select watchium_private.room_expected_position(r) from public.rooms r")
            == Decimal(str(state["current_time"])) + 6
        )


@pytest.mark.parametrize(
    ("sql", "value", "message"),
    [
        ("select public.seek_to_time(%s, %s::numeric)", "NaN", "p_time must be a finite number"),
        (
            "select public.seek_to_time(%s, %s::numeric)",
            "Infinity",
            "p_time must be a finite number",
        ),
        (
            "select public.seek_to_time(%s, %s::numeric)",
            "-Infinity",
            "p_time must be a finite number",
        ),
        ("select public.seek_to_time(%s, %s::numeric)", "-1", "p_time must be >= 0"),
        ("select public.seek_to_time(%s, %s::numeric)", "86400.5", "p_time must be <= 86400"),
        ("select public.seek_to_time(%s, %s::numeric)", None, "p_time must be a number"),
        (
            "select public.change_playback_state(%s, true, %s::numeric)",
            "NaN",
            "p_current_time must be a finite",
        ),
        (
            "select public.change_playback_state(%s, true, %s::numeric)",
            "-0.5",
            "p_current_time must be >= 0",
        ),
        (
            "select public.change_playback_state(%s, true, %s::numeric)",
            "1e6",
            "p_current_time must be <= 86400",
        ),
        (
            "select public.set_playback_speed(%s, %s::numeric)",
            "NaN",
            "p_speed must be a number from 0.25 to 4.0",
        ),
        (
            "select public.set_playback_speed(%s, %s::numeric)",
            "0.2",
            "p_speed must be a number from 0.25 to 4.0",
        ),
        (
            "select public.set_playback_speed(%s, %s::numeric)",
            "4.01",
            "p_speed must be a number from 0.25 to 4.0",
        ),
        (
            "select public.set_playback_speed(%s, %s::numeric)",
            "Infinity",
            "p_speed must be a number from 0.25 to 4.0",
        ),
        (
            "select public.set_playback_speed(%s, %s::numeric)",
            None,
            "p_speed must be a number from 0.25 to 4.0",
        ),
        (
            "select public.set_playback_speed(%s, %s::numeric)",
            "1.255",
            "p_speed must have at most 2 decimals",
        ),
    ],
)
def test_bad_control_values_are_rejected_before_anything_changes(conn, sql, value, message):
    make_room(conn)
    before = conn.execute("select xmin::text from public.rooms").fetchone()
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "host") as c:
        c.execute(sql, (ROOM_ID, value))
    assert exc.value.sqlstate == "22023"
    assert message in str(exc.value)
    assert conn.execute("select xmin::text from public.rooms").fetchone() == before


def test_play_pause_requires_is_playing(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "host") as c:
        c.execute("select public.change_playback_state(%s, null)", (ROOM_ID,))
    assert exc.value.sqlstate == "22023" and "p_is_playing" in str(exc.value)


def test_unknown_room_is_not_found(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "host") as c:
        c.execute("select public.seek_to_time('zzzzzzzzzz', 1)")
    assert exc.value.sqlstate == "P0002"


def test_host_controls_are_rate_limited(conn):
    make_room(conn)
    conn.execute(
        "update watchium_private.rate_limit_rules set max_requests = 2 where action = 'sync_control'"
    )
    for t in (1, 2):
        with as_user(conn, "host") as c:
            c.execute("select public.seek_to_time(%s, %s)", (ROOM_ID, t))
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "host") as c:
        c.execute("select public.seek_to_time(%s, 3)", (ROOM_ID,))
    assert exc.value.sqlstate == "WD429"
    assert one(conn, "select current_playback_time from public.rooms") == 2


def test_bulk_sync_update_host_or_service_role_only(conn):
    make_room(conn, members=["alice", "bob"])
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute("select public.bulk_sync_update(%s, 10, 'seek')", (ROOM_ID,))
    assert exc.value.sqlstate == "42501"
    assert one(conn, "select count(*) from public.sync_states") == 0
    with as_user(conn, "host") as c:
        c.execute("select public.bulk_sync_update(%s, 10, 'seek')", (ROOM_ID,))
    with as_service(conn) as c:
        c.execute("select public.bulk_sync_update(%s, null, 'join')", (ROOM_ID,))
    counts = conn.execute(
        "select sync_event_type, count(*) from public.sync_records group by 1 order by 1"
    ).fetchall()
    assert counts == [("join", 3), ("seek", 3)]
    # Stored as one snapshot row per call.
    assert one(conn, "select count(*) from public.sync_states") == 2


@pytest.mark.parametrize(
    ("host_time", "event", "message"),
    [
        ("NaN", "seek", "p_host_time must be a finite number"),
        ("-1", "seek", "p_host_time must be >= 0"),
        ("10", "rewind", "p_sync_event_type must be one of"),
        ("10", None, "p_sync_event_type must be one of"),
    ],
)
def test_bulk_sync_update_validates(conn, host_time, event, message):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "host") as c:
        c.execute(
            "select public.bulk_sync_update(%s, %s::numeric, %s)", (ROOM_ID, host_time, event)
        )
    assert exc.value.sqlstate == "22023" and message in str(exc.value)


def test_bulk_sync_update_is_one_statement_for_a_large_room(conn):
    make_room(conn, members=[])
    add_members(conn, ROOM_ID, [f"user{i}" for i in range(500)])
    conn.execute("delete from public.sync_states")  # the join records of the 500 new members
    with as_service(conn) as c:
        c.execute("select public.bulk_sync_update(%s, 0, 'seek')", (ROOM_ID,))
    assert one(conn, "select count(*) from public.sync_records") == 501
    # One snapshot row holds them: one insert and one index entry, whatever the room's size.
    assert one(conn, "select count(*) from public.sync_states") == 1
    assert one(conn, "select cardinality(member_ids) from public.sync_states") == 501
    # The core is one statement (no loop) with one INSERT into the history.
    source = one(
        conn,
        "select prosrc from pg_proc"
        " where oid = 'watchium_private.sync_room_members(text, numeric, text, text, numeric)'::regprocedure",
    )
    assert " loop" not in source.lower()
    assert source.count("insert into public.sync_states") == 1


SYNC_RPCS = [
    "public.change_playback_state(text, boolean, numeric)",
    "public.seek_to_time(text, numeric)",
    "public.set_playback_speed(text, numeric)",
    "public.bulk_sync_update(text, numeric, text)",
    "public.record_heartbeat(text, numeric, boolean, numeric, numeric, integer)",
    "public.get_room_sync_state(text)",
    "public.get_room_sync_metrics(text)",
    "public.record_realtime_metrics(text, integer, bigint, numeric, numeric)",
    "public.get_realtime_metrics_summary(text, integer)",
]


def test_privileges_hold_under_supabase_default_grants(conn):
    for fn in SYNC_RPCS:
        assert not one(conn, "select has_function_privilege('anon', %s, 'execute')", (fn,)), fn
        assert one(conn, "select has_function_privilege('authenticated', %s, 'execute')", (fn,)), fn
        assert one(conn, "select has_function_privilege('service_role', %s, 'execute')", (fn,)), fn
    batch = "public.record_heartbeats(text, text[], numeric[], boolean[], numeric[], numeric[], integer[])"
    assert not one(conn, "select has_function_privilege('authenticated', %s, 'execute')", (batch,))
    assert one(conn, "select has_function_privilege('service_role', %s, 'execute')", (batch,))
    # Internal functions and the metrics table: nobody but the owner.
    private = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'watchium_private' and p.proname in ('room_expected_position',"
        " 'sync_level', 'require_playback_time', 'require_sync_room', 'sync_room_members',"
        " 'apply_host_control', 'apply_heartbeats', 'maintain_sync_history', 'needs_resync',"
        " 'heartbeat_intervals')"
    ).fetchall()
    assert len(private) == 11  # needs_resync has a second form (the room's synced boundary)
    for (fn,) in private:
        for role in ("anon", "authenticated", "service_role"):
            assert not one(conn, "select has_function_privilege(%s, %s, 'execute')", (role, fn)), (
                role,
                fn,
            )
    for role in ("anon", "authenticated", "service_role"):
        assert not one(
            conn,
            "select has_table_privilege(%s, 'watchium_private.realtime_metrics', 'select')",
            (role,),
        )


def test_a_control_that_waited_for_the_room_lock_is_dated_when_it_happens(conn, watchium_db_url):
    """The reference instant is taken after the room lock, not at transaction start: a seek
    that waited 1 s behind another transaction must not date its position 1 s back (playing
    clients would then be told the host is 1 s further than it is)."""
    import threading
    import time

    make_room(conn, playing=True, position=100)
    blocker = psycopg.connect(watchium_db_url)
    blocker.execute("select 1 from public.rooms where room_id = %s for update", (ROOM_ID,))
    seek_done = threading.Event()

    def seek() -> None:
        with psycopg.connect(watchium_db_url, autocommit=True) as c, as_user(c, "host") as s:
            s.execute("select public.seek_to_time(%s, 300)", (ROOM_ID,))
        seek_done.set()

    worker = threading.Thread(target=seek)
    worker.start()
    time.sleep(1.0)  # the seek's transaction has begun and waits for the room lock
    assert not seek_done.is_set()
    blocker.commit()
    blocker.close()
    worker.join(timeout=30)
    assert seek_done.is_set()
    expected = one(conn, "select watchium_private.room_expected_position(r) from public.rooms r")
    # Right after the seek the host is at 300 s (plus the moments since), not at 301 s.
    assert 300 <= expected < 300.5, expected
