"""Gapless resync for members (revision 0030): a snapshot (get_room_sync_state) and the room's
events from its events_position (get_room_events) miss nothing and repeat nothing, whatever
order transactions commit in; members read only their room's events, from shortly before they
joined; bad positions are refused cleanly."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user, make_room

Conn = psycopg.Connection[Any]
EVENTS = "select public.get_room_events(%s, %s, %s, %s, %s)"


def call(conn: Conn, user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def sqlstate(conn: Conn, user: str, sql: str, *params: Any) -> str:
    try:
        call(conn, user, sql, *params)
    except psycopg.Error as exc:
        assert exc.sqlstate is not None
        return exc.sqlstate
    return "ok"


def catch_up(conn: Conn, user: str, room_id: str, position: dict[str, Any], limit: int = 200):
    """Every event after the position, page by page; (event ids, final position)."""
    ids: list[int] = []
    while True:
        got = call(
            conn, user, EVENTS, room_id, position["xact_id"], position["event_id"],
            position["snapshot"], limit,
        )  # fmt: skip
        ids += [e["event_id"] for e in got["events"]]
        position = got["position"]
        if not got["more"]:
            return ids, position, got


def control(url: str, user: str, room_id: str, position: int) -> psycopg.Connection[Any]:
    """A host control left open: its playback event is written, its transaction not ended."""
    c = psycopg.connect(url)
    with c.cursor() as cur:
        cur.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (f'{{"sub": "{user}", "role": "authenticated"}}',),
        )
        cur.execute("set local role authenticated")
        cur.execute("select public.seek_to_time(%s, %s)", (room_id, position))
    return c


def playback_event_ids(conn: Conn, room_id: str) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "select event_id from watchium_private.room_events where room_id = %s"
            " and event = 'playback' order by event_id",
            (room_id,),
        ).fetchall()
    ]


def seek_event(conn: Conn, room_id: str, position: int) -> int:
    row = conn.execute(
        "select event_id from watchium_private.room_events where room_id = %s"
        " and event = 'playback' and (payload ->> 'current_time')::numeric = %s",
        (room_id, position),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_snapshot_plus_events_misses_nothing_and_repeats_nothing(watchium_db_url, conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    # A transaction that began first and is still open: not in the snapshot, and it keeps the
    # snapshot's xmin below the next transaction's id.
    early = control(watchium_db_url, "hana", rid, 10)
    # A transaction that began after it and committed before the snapshot: its xact_id is above
    # the snapshot's xmin, yet the snapshot contains it. Resuming from the xmin alone would
    # return it again.
    with psycopg.connect(watchium_db_url, autocommit=True) as other:
        committed = other.execute(
            "insert into watchium_private.room_events (room_id, event, payload)"
            " values (%s, 'room_updated', '{}') returning event_id",
            (rid,),
        ).fetchone()
    assert committed is not None
    position = call(conn, "mio", "select public.get_room_sync_state(%s)", rid)["events_position"]
    assert set(position) == {"xact_id", "event_id", "snapshot"}
    ids, _, got = catch_up(conn, "mio", rid, position)
    assert ids == [] and got["held"] is False
    # An event committed while the early transaction still runs is held back: returning it
    # now would put it before the early one, which sorts first.
    later = conn.execute(
        "insert into watchium_private.room_events (room_id, event, payload)"
        " values (%s, 'room_updated', '{}') returning event_id",
        (rid,),
    ).fetchone()
    assert later is not None
    ids, _, got = catch_up(conn, "mio", rid, position)
    assert ids == [] and got["held"] is True
    early.commit()
    early.close()
    call(conn, "hana", "select public.seek_to_time(%s, 20)", rid)  # after the snapshot
    ids, _, got = catch_up(conn, "mio", rid, position)
    # Exactly the events the snapshot did not contain, in commit-safe order.
    assert ids == [seek_event(conn, rid, 10), later[0], seek_event(conn, rid, 20)]
    assert committed[0] not in ids and got["held"] is False
    # Without the snapshot, the committed event would come back: the filter is what prevents it.
    unfiltered = dict(position, snapshot=None)
    assert committed[0] in catch_up(conn, "mio", rid, unfiltered)[0]


def test_paging_returns_each_event_once_in_order(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    position = call(conn, "mio", "select public.get_room_sync_state(%s)", rid)["events_position"]
    for t in (1, 2, 3, 4, 5):
        call(conn, "hana", "select public.seek_to_time(%s, %s)", rid, t)
    ids, last, _ = catch_up(conn, "mio", rid, position, limit=2)
    assert ids == playback_event_ids(conn, rid)[-5:]
    # From the returned position: nothing again.
    assert catch_up(conn, "mio", rid, last)[0] == []


def test_a_member_reads_nothing_from_before_it_joined(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    call(conn, "hana", "select public.seek_to_time(%s, 5)", rid)
    old = max(playback_event_ids(conn, rid))
    conn.execute(
        "update public.room_members set joined_at = now() - interval '1 hour' where user_id = 'hana'"
    )
    conn.execute(
        "update watchium_private.room_events set created_at = now() - interval '10 minutes'"
        " where event_id = %s",
        (old,),
    )
    start = {"xact_id": "1", "event_id": 0, "snapshot": None}
    assert old not in catch_up(conn, "mio", rid, start)[0]  # mio joined just now
    assert old in catch_up(conn, "hana", rid, start)[0]  # hana was there


def test_non_members_and_strangers_read_nothing(conn):
    public = make_room(conn, host="hana", members=["mio"])
    private = make_room(conn, host="hana", private=True)
    args = ("1", 0, None, 10)
    assert sqlstate(conn, "eve", EVENTS, public.room_id, *args) == "42501"
    assert sqlstate(conn, "eve", EVENTS, private.room_id, *args) == "P0002"
    assert sqlstate(conn, "eve", EVENTS, "no-such-room", *args) == "P0002"
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(conn, None, role="anon") as c:
        c.execute(EVENTS, (public.room_id, *args))


@pytest.mark.parametrize(
    ("xact_id", "event_id", "snapshot", "limit", "named"),
    [
        ("not-a-number", 0, None, 10, "p_after_xact_id"),
        ("-1", 0, None, 10, "p_after_xact_id"),
        (None, 0, None, 10, "p_after_xact_id"),
        ("1", -1, None, 10, "p_after_event_id"),
        ("1", 0, "garbage", 10, "p_snapshot"),
        ("1", 0, "20:10:", 10, "p_snapshot"),
        ("18446744073709551616", 0, None, 10, "p_after_xact_id"),
        ("1e5", 0, None, 10, "p_after_xact_id"),
        ("1", 0, None, 0, "p_limit"),
        ("1", 0, None, 1001, "p_limit"),
    ],
)
def test_bad_positions_are_refused_by_name(conn, xact_id, event_id, snapshot, limit, named):
    room = make_room(conn, host="hana", members=["mio"])
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "mio") as c:
        c.execute(EVENTS, (room.room_id, xact_id, event_id, snapshot, limit))
    assert exc.value.sqlstate == "22023" and named in str(exc.value)


def test_sync_state_shows_the_waiting_state(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    call(conn, "hana", "select public.change_playback_state(%s, true, 100)", rid)
    call(conn, "mio", "select public.report_playback_status(%s, 'ready', 100)", rid)
    call(conn, "mio", "select public.report_playback_status(%s, 'buffering', 101)", rid)
    waiting = call(conn, "hana", "select public.get_room_sync_state(%s)", rid)["waiting"]
    assert (waiting["state"], waiting["reason"], waiting["blocking"]) == (
        "waiting", "buffering", ["mio"],
    )  # fmt: skip
    assert waiting["waiting_since"] is not None and waiting["deadline"] is not None
