"""cancel_ready_check (docs/sync.md, "Ready check"): whoever may start a ready check ends it
without starting playback; the room stays paused."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user, make_room


def rpc(conn: psycopg.Connection[Any], user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    return row[0] if row else None


def room_state(conn: psycopg.Connection[Any], room_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select is_playing, current_playback_time, waiting_reason, sync_deadline,"
        " ready_check_min_ready from public.rooms where room_id = %s",
        (room_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def events(conn: psycopg.Connection[Any], room_id: str, name: str) -> list[dict[str, Any]]:
    return [
        p
        for (p,) in conn.execute(
            "select payload from watchium_private.room_events"
            " where room_id = %s and event = %s order by event_id",
            (room_id, name),
        )
    ]


def race(
    url: str, room_id: str, calls: list[tuple[str, str]]
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Start every call at once, each on its own connection: replies and SQLSTATEs by user."""
    barrier = threading.Barrier(len(calls))
    replies: dict[str, Any] = {}
    errors: dict[str, str | None] = {}

    def call(user: str, sql: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as c:
                barrier.wait()
                with as_user(c, user) as cc:
                    row = cc.execute(sql, (room_id,)).fetchone()
                    replies[user] = row[0] if row else None
        except psycopg.Error as exc:
            errors[user] = exc.sqlstate

    threads = [threading.Thread(target=call, args=args) for args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return replies, errors


@pytest.fixture
def checking(conn):
    """A room that played to 100 s and now runs a ready check needing every member."""
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 100)", room.room_id)
    rpc(conn, "hana", "select public.start_ready_check(%s, 60)", room.room_id)
    return room.room_id


def test_the_host_cancels_a_ready_check_and_the_room_stays_paused(conn, checking):
    rid = checking
    rpc(conn, "mio", "select public.set_ready(%s, true)", rid)
    frozen = room_state(conn, rid)[1]
    reply = rpc(conn, "hana", "select public.cancel_ready_check(%s)", rid)
    assert reply["cancelled"] is True and reply["waiting"]["state"] == "paused"
    assert room_state(conn, rid) == (False, frozen, None, None, None)
    last = events(conn, rid, "ready_check")[-1]
    assert (last["state"], last["user_id"], last["ready_members"], last["needed"]) == (
        "cancelled", "hana", 2, 3,
    )  # fmt: skip
    wait = events(conn, rid, "sync_wait")[-1]
    assert (wait["state"], wait["cause"], wait["reason"]) == ("cancelled", "host", "ready_check")
    # The check is over: a late answer changes nothing, and is told it was cancelled (not
    # expired); the room does not start.
    late = rpc(conn, "ren", "select public.set_ready(%s, true)", rid)
    assert (late["ready_check_state"], late["answer_counted"]) == ("cancelled", False)
    assert late["waiting"]["state"] == "paused"
    assert room_state(conn, rid)[0] is False
    # Nothing runs any more: nothing to cancel, nothing emitted.
    before = len(events(conn, rid, "ready_check"))
    again = rpc(conn, "hana", "select public.cancel_ready_check(%s)", rid)
    assert again["cancelled"] is False and again["waiting"]["state"] == "paused"
    assert len(events(conn, rid, "ready_check")) == before
    # A new check can start.
    assert rpc(conn, "hana", "select public.start_ready_check(%s, 30)", rid)["waiting"][
        "reason"
    ] == ("ready_check")


def test_a_co_host_may_cancel_a_member_may_not(conn, checking):
    rid = checking
    for user in ("mio", "eve"):  # a member; a stranger to the public room
        with pytest.raises(psycopg.Error) as exc:
            rpc(conn, user, "select public.cancel_ready_check(%s)", rid)
        assert exc.value.sqlstate == "42501"
    assert room_state(conn, rid)[2] == "ready_check"
    rpc(conn, "hana", "select public.set_member_role(%s, 'mio', 'co_host')", rid)
    assert rpc(conn, "mio", "select public.cancel_ready_check(%s)", rid)["cancelled"] is True


def test_a_buffering_wait_or_an_expired_check_is_not_cancelled(conn, checking):
    rid = checking
    # The deadline passed: the call applies it (playback starts), then has nothing to cancel.
    conn.execute(
        "update public.rooms set sync_deadline = now() - interval '1 second' where room_id = %s",
        (rid,),
    )
    reply = rpc(conn, "hana", "select public.cancel_ready_check(%s)", rid)
    assert reply["cancelled"] is False and reply["waiting"]["state"] == "scheduled"
    assert [p["state"] for p in events(conn, rid, "ready_check")][-1] == "expired"
    # A wait for a buffering member is no ready check: left alone.
    rpc(conn, "mio", "select public.report_playback_status(%s, 'ready', 100)", rid)
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    assert room_state(conn, rid)[2] == "buffering"
    assert rpc(conn, "hana", "select public.cancel_ready_check(%s)", rid)["cancelled"] is False
    assert room_state(conn, rid)[2] == "buffering"


def test_bad_room_ids(conn, checking):
    for room_id, sqlstate in (("x" * 41, "22001"), ("no-such-room", "P0002"), (None, "P0002")):
        with pytest.raises(psycopg.Error) as exc:
            rpc(conn, "hana", "select public.cancel_ready_check(%s)", room_id)
        assert exc.value.sqlstate == sqlstate
    assert room_state(conn, checking)[2] == "ready_check"


def test_a_cancel_racing_the_last_ready_answer_has_one_outcome(watchium_db_url, conn, checking):
    rid = checking
    rpc(conn, "mio", "select public.set_ready(%s, true)", rid)  # ren's answer completes it
    for _round in range(6):
        before = len(events(conn, rid, "ready_check"))
        replies, errors = race(
            watchium_db_url,
            rid,
            [("ren", "select public.set_ready(%s, true)"),
             ("hana", "select public.cancel_ready_check(%s)")],
        )  # fmt: skip
        new = [p["state"] for p in events(conn, rid, "ready_check")[before:]]
        playing, _, reason, _, _ = room_state(conn, rid)
        assert reason is None
        assert errors == {}
        if replies["hana"]["cancelled"]:
            # The cancel came first: ren's answer arrived after the check, changed nothing and
            # is told so: cancelled, not expired.
            assert new == ["cancelled"] and playing is False
            assert (replies["ren"]["ready_check_state"], replies["ren"]["answer_counted"]) == (
                "cancelled", False,
            )  # fmt: skip
        else:
            assert new == ["updated", "completed"] and playing is True
            assert replies["ren"]["waiting"]["state"] == "scheduled"
            assert (replies["ren"]["ready_check_state"], replies["ren"]["answer_counted"]) == (
                "completed", True,
            )  # fmt: skip
        # Next round: paused, a new check with mio (and the host) ready.
        rpc(conn, "hana", "select public.change_playback_state(%s, false)", rid)
        rpc(conn, "hana", "select public.start_ready_check(%s, 60)", rid)
        rpc(conn, "mio", "select public.set_ready(%s, true)", rid)


def test_a_late_answer_tells_cancelled_from_expired(conn, checking):
    """set_ready after the check ended says how: cancelled (cancel_ready_check or the host's
    pause: the room stays paused) is not expired (the deadline passed: playback started),
    whether the end was applied by the answer itself or before it (maintenance)."""
    rid = checking
    rpc(conn, "hana", "select public.cancel_ready_check(%s)", rid)
    late = rpc(conn, "mio", "select public.set_ready(%s, true)", rid)
    assert (late["ready_check_state"], late["answer_counted"]) == ("cancelled", False)

    # Cancelled by the host's pause.
    rpc(conn, "hana", "select public.start_ready_check(%s, 60)", rid)
    rpc(conn, "hana", "select public.change_playback_state(%s, false)", rid)
    late = rpc(conn, "ren", "select public.set_ready(%s, true)", rid)
    assert (late["ready_check_state"], late["answer_counted"]) == ("cancelled", False)
    assert late["waiting"]["state"] == "paused"

    # Expired, the deadline applied by maintenance before the answer came.
    rpc(conn, "hana", "select public.start_ready_check(%s, 60)", rid)
    conn.execute(
        "update public.rooms set sync_deadline = now() - interval '1 second' where room_id = %s",
        (rid,),
    )
    conn.execute("select public.maintain()")
    assert room_state(conn, rid)[2] is None
    late = rpc(conn, "mio", "select public.set_ready(%s, true)", rid)
    assert (late["ready_check_state"], late["answer_counted"]) == ("expired", False)
    assert late["waiting"]["state"] in ("scheduled", "playing")
    states = [p["state"] for p in events(conn, rid, "ready_check")]
    assert states[-1] == "expired" and states.count("cancelled") == 2


def test_an_answer_in_a_room_that_never_ran_a_check_is_refused(conn):
    rid = make_room(conn, host="hana", members=["mio"]).room_id
    with pytest.raises(psycopg.Error) as exc:
        rpc(conn, "mio", "select public.set_ready(%s, true)", rid)
    assert exc.value.sqlstate == "WD409"
