"""Group wait for buffering members, ready checks and scheduled resumes (docs/sync.md, "Waiting").

Deadlines are columns applied by the next call on the room: the tests move a deadline into the
past (as the owner) instead of sleeping, then make the call that must apply it.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user, make_room


def rpc(conn: psycopg.Connection[Any], user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    return row[0] if row else None


def room_row(conn: psycopg.Connection[Any], room_id: str) -> dict[str, Any]:
    cur = conn.execute(
        "select is_playing, current_playback_time, playback_updated_at, waiting_since,"
        " waiting_reason, sync_deadline, playback_updated_at > clock_timestamp() as scheduled"
        " from public.rooms where room_id = %s",
        (room_id,),
    )
    names = [d.name for d in cur.description or ()]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def events(
    conn: psycopg.Connection[Any], room_id: str, *names: str
) -> list[tuple[str, dict[str, Any]]]:
    return conn.execute(
        "select event, payload from watchium_private.room_events"
        " where room_id = %s and event = any(%s) order by event_id",
        (room_id, list(names)),
    ).fetchall()


def expire(conn: psycopg.Connection[Any], room_id: str, *users: str) -> None:
    """Move the named members' deadlines (or the ready check's) into the past."""
    if users:
        conn.execute(
            "update watchium_private.member_playback set wait_deadline = now() - interval '1 second'"
            " where room_id = %s and user_id = any(%s)",
            (room_id, list(users)),
        )
    conn.execute(
        "update public.rooms set sync_deadline = now() - interval '1 second' where room_id = %s",
        (room_id,),
    )


@pytest.fixture
def playing(conn):
    room = make_room(conn, host="hana", members=["mio", "ren", "kai"])
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 100)", room.room_id)
    # Every member has loaded once: their next buffering is a re-buffer.
    for user in ("mio", "ren", "kai"):
        rpc(conn, user, "select public.report_playback_status(%s, 'ready', 100)", room.room_id)
    return room.room_id


def test_a_buffering_member_pauses_the_room_and_its_ready_report_resumes_it(conn, playing):
    rid = playing
    reply = rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 101)", rid)
    assert reply["me"]["is_blocking"] is True
    assert reply["waiting"]["state"] == "waiting"
    assert reply["waiting"]["reason"] == "buffering"
    assert reply["waiting"]["blocking"] == ["mio"] and reply["waiting"]["blocking_members"] == 1
    room = room_row(conn, rid)
    assert room["is_playing"] is False and room["waiting_reason"] == "buffering"
    frozen = room["current_playback_time"]
    assert frozen >= Decimal(100)
    # A re-buffer is excused after 10 s.
    deadline = conn.execute(
        "select wait_deadline - status_since from watchium_private.member_playback"
        " where room_id = %s and user_id = 'mio'",
        (rid,),
    ).fetchone()
    assert deadline is not None and deadline[0].total_seconds() == 10
    assert room["sync_deadline"] is not None

    reply = rpc(conn, "mio", "select public.report_playback_status(%s, 'ready', %s)", rid, frozen)
    assert reply["me"]["is_blocking"] is False
    room = room_row(conn, rid)
    assert (
        room["is_playing"] is True
        and room["waiting_since"] is None
        and room["sync_deadline"] is None
    )
    assert room["current_playback_time"] == frozen and room["scheduled"] is True
    actions = [p["action"] for _, p in events(conn, rid, "playback")]
    assert actions[-2:] == ["wait", "resume"]
    waits = [(p["state"], p["cause"], p["blocking"]) for _, p in events(conn, rid, "sync_wait")]
    assert waits == [("waiting", "buffering", ["mio"]), ("resumed", "reports", [])]


def test_first_load_waits_60_seconds(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 0)", room.room_id)
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 0)", room.room_id)
    row = conn.execute(
        "select wait_deadline - status_since from watchium_private.member_playback"
        " where room_id = %s and user_id = 'mio'",
        (room.room_id,),
    ).fetchone()
    assert row is not None and row[0].total_seconds() == 60


def test_the_room_waits_for_every_blocker_and_skips_one_that_times_out(conn, playing):
    rid = playing
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    rpc(conn, "ren", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    # mio's ready report leaves ren blocking: still waiting.
    reply = rpc(conn, "mio", "select public.report_playback_status(%s, 'ready', 100)", rid)
    assert reply["waiting"]["state"] == "waiting" and reply["waiting"]["blocking"] == ["ren"]
    # kai starts buffering; ren times out. kai's ready report applies ren's deadline first
    # (ren skipped) and then leaves nobody blocking: the room resumes.
    rpc(conn, "kai", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    expire(conn, rid, "ren")
    reply = rpc(conn, "kai", "select public.report_playback_status(%s, 'ready', 100)", rid)
    assert reply["waiting"]["state"] == "scheduled"
    waits = [(p["state"], p["cause"], p["skipped"]) for _, p in events(conn, rid, "sync_wait")]
    assert ("waiting", "deadline", ["ren"]) in waits
    assert waits[-1] == ("resumed", "reports", [])
    skipped = conn.execute(
        "select skipped_at is not null, wait_deadline from watchium_private.member_playback"
        " where room_id = %s and user_id = 'ren'",
        (rid,),
    ).fetchone()
    assert skipped == (True, None)


def test_a_deadline_alone_resumes_the_room_at_the_next_call_or_maintenance(conn, playing):
    rid = playing
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    expire(conn, rid, "mio")
    assert room_row(conn, rid)["waiting_reason"] == "buffering"  # nothing applied it yet
    done = conn.execute("select public.maintain()").fetchone()
    assert done is not None and done[0]["sync_deadlines"]["rooms_applied"] == 1
    room = room_row(conn, rid)
    assert room["is_playing"] is True and room["waiting_reason"] is None
    last = events(conn, rid, "sync_wait")[-1][1]
    assert (last["state"], last["cause"], last["skipped"]) == ("resumed", "deadline", ["mio"])


def race(url: str, room_id: str, calls: list[tuple[str | None, str]]) -> list[BaseException]:
    """Start every call at once, each on its own connection; return the errors."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def call(user: str | None, sql: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as c:
                barrier.wait()
                if user is None:
                    c.execute(sql)
                else:
                    with as_user(c, user) as cc:
                        cc.execute(sql, (room_id,))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=args) for args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_reports_racing_a_deadline_resume_exactly_once(watchium_db_url, conn, playing):
    rid = playing
    for _round in range(5):
        rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
        rpc(conn, "ren", "select public.report_playback_status(%s, 'buffering', 100)", rid)
        expire(conn, rid, "ren")
        before = len(events(conn, rid, "sync_wait"))
        errors = race(watchium_db_url, rid, [
            ("mio", "select public.report_playback_status(%s, 'ready', 100)"),
            (None, "select public.maintain()"),
            ("kai", "select public.get_room_sync_state(%s)"),
        ])  # fmt: skip
        assert errors == []
        room = room_row(conn, rid)
        assert room["is_playing"] is True and room["waiting_reason"] is None
        new = [p for _, p in events(conn, rid, "sync_wait")[before:]]
        assert [p["state"] for p in new].count("resumed") == 1
        # ren was skipped exactly once, whichever call applied its deadline.
        assert sum(p["skipped"].count("ren") for p in new) == 1
        rpc(conn, "ren", "select public.report_playback_status(%s, 'ready', 100)", rid)


def test_host_force_resume_skips_the_blockers(conn, playing):
    rid = playing
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    with pytest.raises(psycopg.Error) as exc:
        rpc(conn, "ren", "select public.force_resume(%s)", rid)
    assert exc.value.sqlstate == "42501"
    reply = rpc(conn, "hana", "select public.force_resume(%s)", rid)
    assert reply["resumed"] is True and reply["waiting"]["state"] == "scheduled"
    last = events(conn, rid, "sync_wait")[-1][1]
    assert (last["state"], last["cause"], last["skipped"]) == ("resumed", "host", ["mio"])
    # Not waiting any more: nothing to resume.
    assert rpc(conn, "hana", "select public.force_resume(%s)", rid)["resumed"] is False


def test_an_opted_out_member_never_pauses_the_room(conn, playing):
    rid = playing
    rpc(conn, "mio", "select public.set_wait_opt_out(%s, true)", rid)
    reply = rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    assert reply["me"]["is_blocking"] is False
    assert reply["waiting"]["state"] in ("playing", "scheduled")
    assert room_row(conn, rid)["is_playing"] is True
    # Opting out while blocking releases the room at once.
    rpc(conn, "ren", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    assert room_row(conn, rid)["waiting_reason"] == "buffering"
    reply = rpc(conn, "ren", "select public.set_wait_opt_out(%s, true)", rid)
    assert reply["waiting"]["state"] == "scheduled"
    last = events(conn, rid, "sync_wait")[-1][1]
    assert (last["state"], last["cause"]) == ("resumed", "opt_out")


def test_a_late_joiner_never_pauses_the_room(conn, playing):
    rid = playing
    rpc(conn, "yui", "select public.join_room(%s, p_username => 'Yui')", rid)
    reply = rpc(conn, "yui", "select public.report_playback_status(%s, 'buffering', 0)", rid)
    assert reply["me"]["late_joiner"] is True and reply["me"]["is_blocking"] is False
    assert room_row(conn, rid)["is_playing"] is True
    assert events(conn, rid, "sync_wait") == []
    # Once loaded, a later buffering is a re-buffer and is waited for.
    rpc(conn, "yui", "select public.report_playback_status(%s, 'ready', 5)", rid)
    reply = rpc(conn, "yui", "select public.report_playback_status(%s, 'buffering', 6)", rid)
    assert (
        reply["me"]["is_blocking"] is True and room_row(conn, rid)["waiting_reason"] == "buffering"
    )


def test_a_paused_room_does_not_wait(conn):
    room = make_room(conn, host="hana", members=["mio"])
    reply = rpc(
        conn, "mio", "select public.report_playback_status(%s, 'buffering', 0)", room.room_id
    )
    assert reply["me"]["is_blocking"] is False and reply["waiting"]["state"] == "paused"
    assert events(conn, room.room_id, "sync_wait") == []


def test_ready_check_starts_playback_when_enough_members_are_ready(conn, playing):
    rid = playing
    reply = rpc(conn, "hana", "select public.start_ready_check(%s, 30, 3)", rid)
    assert reply["waiting"]["reason"] == "ready_check"
    assert reply["waiting"]["ready_check"]["ready_members"] == 1  # the host
    assert reply["waiting"]["ready_check"]["needed"] == 3
    assert room_row(conn, rid)["is_playing"] is False
    with pytest.raises(psycopg.Error) as exc:
        rpc(conn, "hana", "select public.start_ready_check(%s, 30)", rid)
    assert exc.value.sqlstate == "WD409"
    reply = rpc(conn, "mio", "select public.set_ready(%s, true)", rid)
    assert (reply["ready_check_state"], reply["answer_counted"]) == ("running", True)
    rpc(conn, "ren", "select public.set_ready(%s, false)", rid)
    assert room_row(conn, rid)["waiting_reason"] == "ready_check"
    reply = rpc(conn, "kai", "select public.set_ready(%s, true)", rid)
    assert reply["waiting"]["state"] == "scheduled"
    assert (reply["ready_check_state"], reply["answer_counted"]) == ("completed", True)
    states = [
        (p["state"], p["user_id"], p["ready_members"]) for _, p in events(conn, rid, "ready_check")
    ]
    assert states == [
        ("started", "hana", 1),
        ("updated", "mio", 2),
        ("updated", "ren", 2),
        ("updated", "kai", 3),
        ("completed", "kai", 3),
    ]
    # An answer after the end changes nothing and says how the check ended.
    late = rpc(conn, "mio", "select public.set_ready(%s, false)", rid)
    assert (late["ready_check_state"], late["answer_counted"]) == ("completed", False)
    assert len(events(conn, rid, "ready_check")) == 5


def test_ready_check_expires_and_starts_playback(conn, playing):
    rid = playing
    rpc(conn, "hana", "select public.start_ready_check(%s, 60)", rid)  # every member needed
    rpc(conn, "mio", "select public.set_ready(%s, true)", rid)
    expire(conn, rid)
    # The next call on the room applies the deadline: ren's answer comes too late (no error,
    # the expiry it applied is kept).
    reply = rpc(conn, "ren", "select public.set_ready(%s, true)", rid)
    assert reply["waiting"]["state"] == "scheduled"
    assert (reply["ready_check_state"], reply["answer_counted"]) == ("expired", False)
    room = room_row(conn, rid)
    assert room["is_playing"] is True and room["scheduled"] is True
    last = events(conn, rid, "ready_check")[-1][1]
    assert (last["state"], last["ready_members"], last["needed"]) == ("expired", 2, 4)


def test_ready_check_bad_arguments(conn, playing):
    rid = playing
    for timeout, min_ready in ((0, None), (3601, None), (Decimal("NaN"), None), (None, None),
                               (30, 0), (30, 5)):  # fmt: skip
        with pytest.raises(psycopg.Error) as exc:
            rpc(
                conn, "hana", "select public.start_ready_check(%s, %s, %s)", rid, timeout, min_ready
            )
        assert exc.value.sqlstate == "22023"
        assert ("p_timeout_seconds" if min_ready is None else "p_min_ready") in str(exc.value)
    assert room_row(conn, rid)["waiting_reason"] is None
    with pytest.raises(psycopg.Error) as exc:
        rpc(conn, "mio", "select public.start_ready_check(%s, 30)", rid)
    assert exc.value.sqlstate == "42501"


def test_report_bad_arguments_store_nothing(conn, playing):
    rid = playing
    for status, position, argument in (("playing", 1, "p_status"), (None, 1, "p_status"),
                                       ("buffering", Decimal("NaN"), "p_position"),
                                       ("buffering", -1, "p_position"),
                                       ("buffering", None, "p_position")):  # fmt: skip
        with pytest.raises(psycopg.Error) as exc:
            rpc(
                conn,
                "mio",
                "select public.report_playback_status(%s, %s, %s)",
                rid,
                status,
                position,
            )
        assert exc.value.sqlstate == "22023" and argument in str(exc.value)
    assert room_row(conn, rid)["waiting_reason"] is None
    with pytest.raises(psycopg.Error) as exc:
        rpc(conn, "stranger", "select public.report_playback_status(%s, 'buffering', 1)", rid)
    assert exc.value.sqlstate == "42501"


def test_scheduled_start_position_math(conn, playing):
    """Before the start instant the expected position is the start position; after it, the
    position advances from there at the room's speed."""
    rid = playing
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    rpc(conn, "mio", "select public.report_playback_status(%s, 'ready', 100)", rid)
    start, starts_at, at_start, before, after, lead = conn.execute(
        "select r.current_playback_time, r.playback_updated_at,"
        " watchium_private.room_expected_position(r, r.playback_updated_at),"
        " watchium_private.room_expected_position(r, r.playback_updated_at - interval '400 ms'),"
        " watchium_private.room_expected_position(r, r.playback_updated_at + interval '10 s'),"
        " r.playback_updated_at - r.updated_at"
        " from public.rooms as r where r.room_id = %s",
        (rid,),
    ).fetchone()
    assert at_start == start and before == start and after == start + 10
    same = conn.execute(
        "select (e.payload ->> 'starts_at')::timestamptz = r.playback_updated_at,"
        " e.payload ->> 'reason'"
        " from watchium_private.room_events as e join public.rooms as r using (room_id)"
        " where e.room_id = %s and e.event = 'sync_wait' order by e.event_id desc limit 1",
        (rid,),
    ).fetchone()
    assert same == (True, "buffering")  # the event names the start instant the room stores
    assert lead.total_seconds() >= 0.5  # at least the minimum lead after the decision
    assert starts_at is not None


def test_get_wait_state_hides_a_blocker_whose_deadline_passed(conn, playing):
    rid = playing
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    rpc(conn, "ren", "select public.report_playback_status(%s, 'buffering', 100)", rid)
    conn.execute(
        "update watchium_private.member_playback set wait_deadline = now() - interval '1 s'"
        " where room_id = %s and user_id = 'ren'",
        (rid,),
    )
    state = conn.execute(
        "select watchium_private.room_wait_state(r) from public.rooms as r where room_id = %s",
        (rid,),
    ).fetchone()
    assert state is not None and state[0]["blocking"] == ["mio"]
