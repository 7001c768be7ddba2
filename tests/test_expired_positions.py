"""Trimmed positions (watchium_private.room_events_expired, docs/realtime.md "Log, ordering and
retention"): maintenance deletes the row of a room that no longer exists once nothing of it is
left in the log and the row is older than room_event_retention; a room that exists keeps its
row, and a listener behind it is still told "expired"."""

from __future__ import annotations

from typing import Any

import psycopg

from watchium_db.testing import as_user, make_room


def expired_row(conn: psycopg.Connection[Any], room_id: str) -> Any:
    return conn.execute(
        "select xact_id::text, event_id from watchium_private.room_events_expired"
        " where room_id = %s",
        (room_id,),
    ).fetchone()


def trim_everything(conn: psycopg.Connection[Any], room_id: str) -> None:
    """Every event of the room is past retention: the next maintenance trims them all."""
    conn.execute(
        "update watchium_private.room_events set created_at = now() - interval '2 hours'"
        " where room_id = %s",
        (room_id,),
    )


def age_row(conn: psycopg.Connection[Any], room_id: str) -> None:
    """Trimming last moved the room's row more than a retention period ago."""
    conn.execute(
        "update watchium_private.room_events_expired"
        " set expired_at = now() - interval '61 minutes' where room_id = %s",
        (room_id,),
    )


def maintain(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute("select public.maintain()").fetchone()
    assert row is not None and row[0]["skipped"] == []
    return dict(row[0]["room_events"])


def test_a_deleted_room_loses_its_row_a_live_room_keeps_it(conn):
    gone = make_room(conn, host="hana", members=["mio"]).room_id
    live = make_room(conn, host="ren", members=["sora"]).room_id
    with as_user(conn, "hana") as c:
        c.execute("select public.delete_room(%s)", (gone,))
    for room_id in (gone, live):
        trim_everything(conn, room_id)
    first = maintain(conn)
    assert first["deleted"] >= 4 and first["positions_pruned"] == 0
    # Just trimmed: both rows are there (a listener of the deleted room resuming now is told
    # it lost the room's last events, room_deleted included).
    assert expired_row(conn, gone) is not None and expired_row(conn, live) is not None

    for room_id in (gone, live):
        age_row(conn, room_id)
    second = maintain(conn)
    assert second["positions_pruned"] == 1
    assert expired_row(conn, gone) is None
    through = expired_row(conn, live)
    assert through is not None

    # A listener of the live room behind the trimmed position is still told.
    row = conn.execute(
        "select watchium_private.read_room_events(%s, '1'::xid8, 0, 100)", (live,)
    ).fetchone()
    assert row is not None
    assert row[0]["expired"]["event_id"] == through[1]
    assert row[0]["expired"]["xact_id"] == through[0]
    # And stays so, run after run.
    assert maintain(conn)["positions_pruned"] == 0
    assert expired_row(conn, live) == through


def test_a_deleted_room_with_events_left_keeps_its_row(conn):
    """Only trimmed partly: the events left still need the row for a listener behind it."""
    room_id = make_room(conn, host="hana", members=["mio"]).room_id
    with as_user(conn, "hana") as c:
        c.execute("select public.delete_room(%s)", (room_id,))
    conn.execute(
        "update watchium_private.room_events set created_at = now() - interval '2 hours'"
        " where room_id = %s and event <> 'room_deleted'",
        (room_id,),
    )
    maintain(conn)
    age_row(conn, room_id)
    assert maintain(conn)["positions_pruned"] == 0
    assert expired_row(conn, room_id) is not None
    # Once its last event is trimmed too, the row moves (kept a retention period), then goes.
    trim_everything(conn, room_id)
    maintain(conn)
    assert expired_row(conn, room_id) is not None
    age_row(conn, room_id)
    assert maintain(conn)["positions_pruned"] == 1
    assert expired_row(conn, room_id) is None


def test_pruning_is_bounded_per_run(conn):
    conn.execute(
        "insert into watchium_private.room_events_expired (room_id, xact_id, event_id, expired_at)"
        " select 'gone' || g, '5'::xid8, g, now() - interval '2 hours'"
        " from generate_series(1, 1500) as g"
    )
    assert maintain(conn)["positions_pruned"] == 1000
    assert maintain(conn)["positions_pruned"] == 500
    assert conn.execute(
        "select count(*) from watchium_private.room_events_expired where room_id like 'gone%'"
    ).fetchone() == (0,)
