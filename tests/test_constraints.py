"""The core tables reject what must never be stored: NaN, infinities, negatives, bad ids."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import errors

ROOM = (
    "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url)"
    " values (%s, 'Movie night', 'a1', 'Anime', 1, 'https://example.com/v.m3u8')"
)


def insert_room(conn: psycopg.Connection[Any], room_id: str = "abcdefghij") -> None:
    conn.execute(ROOM, (room_id,))


@pytest.mark.parametrize("value", ["NaN", "-0.01", "86400.01"])
def test_room_playback_time_rejects_nan_and_out_of_range(conn, value):
    insert_room(conn)
    with pytest.raises(errors.CheckViolation) as exc:
        conn.execute("update public.rooms set current_playback_time = %s::numeric", (value,))
    assert exc.value.diag.constraint_name == "rooms_current_playback_time_check"


@pytest.mark.parametrize("value", ["Infinity", "-Infinity"])
def test_room_playback_time_cannot_hold_infinity(conn, value):
    insert_room(conn)
    with pytest.raises(errors.NumericValueOutOfRange):
        conn.execute("update public.rooms set current_playback_time = %s::numeric", (value,))


@pytest.mark.parametrize("value", ["NaN", "0.24", "4.01", "0"])
def test_room_playback_speed_bounds(conn, value):
    insert_room(conn)
    with pytest.raises(errors.CheckViolation):
        conn.execute("update public.rooms set playback_speed = %s::numeric", (value,))


@pytest.mark.parametrize("room_id", ["short", "ABCDEFGHIJ", "abcdefghijk", "abc-efghij"])
def test_room_id_format(conn, room_id):
    with pytest.raises(errors.CheckViolation) as exc:
        insert_room(conn, room_id)
    assert exc.value.diag.constraint_name == "rooms_room_id_format_check"


def test_one_host_per_room(conn):
    insert_room(conn)
    conn.execute(
        "insert into public.room_members (room_id, user_id, username, is_host)"
        " values ('abcdefghij', 'u1', 'One', true)"
    )
    with pytest.raises(errors.UniqueViolation) as exc:
        conn.execute(
            "insert into public.room_members (room_id, user_id, username, is_host)"
            " values ('abcdefghij', 'u2', 'Two', true)"
        )
    assert exc.value.diag.constraint_name == "room_members_one_host_idx"


def test_one_anchor_per_episode(conn):
    sql = (
        "insert into public.comments (anime_id, episode_number, username, message, is_anchor)"
        " values ('a1', 3, 'system', 'Discussion for Episode 3', true)"
    )
    conn.execute(sql)
    with pytest.raises(errors.UniqueViolation):
        conn.execute(sql)


def test_sync_history_rejects_unknown_event_type_and_nan(conn):
    base = (
        "insert into public.sync_states (room_id, user_id, host_time, member_time,"
        " time_difference, is_synced, sync_event_type) values ('abcdefghij', 'u1', %s, 1, 1, true, %s)"
    )
    with pytest.raises(errors.CheckViolation):
        conn.execute(base, ("1", "teleport"))
    with pytest.raises(errors.CheckViolation):
        conn.execute(base, ("NaN", "seek"))
    conn.execute(base, ("1", "seek"))


SNAPSHOT = (
    "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
    " is_synced, sync_event_type, member_ids, member_times)"
    " values ('abcdefghij', %s, 10, %s, %s, %s, 'seek', %s::text[], %s::numeric[])"
)


@pytest.mark.parametrize(
    ("user_id", "member_time", "difference", "synced", "ids", "times"),
    [
        (None, None, None, None, "{a,b}", "{1}"),  # one time per member
        (None, None, None, None, "{a,NULL}", "{1,2}"),  # no null member
        (None, None, None, None, "{a,b}", "{1,NaN}"),  # NaN passes >= 0 but not <= 86400
        (None, None, None, None, "{a}", "{86400.01}"),
        (None, None, None, None, "{a}", "{-1}"),
        (None, None, None, None, "{{a},{b}}", "{{1},{2}}"),  # one dimension
        ("u1", None, None, None, "{a}", "{1}"),  # a snapshot names no single member
        (None, None, None, None, None, "{1}"),  # times without members
        (None, "1", "9", "false", None, None),  # a one-member record needs its member
    ],
)
def test_sync_history_rows_have_one_of_two_shapes(
    conn, user_id, member_time, difference, synced, ids, times
):
    with pytest.raises(errors.CheckViolation) as exc:
        conn.execute(SNAPSHOT, (user_id, member_time, difference, synced, ids, times))
    assert exc.value.diag.constraint_name == "sync_states_shape_check"


def test_snapshot_rows_read_as_one_record_per_member(conn):
    conn.execute(SNAPSHOT, (None, None, None, None, "{a,b,c}", "{10,12.5,7.99}"))
    conn.execute(SNAPSHOT, ("d", "11", "1", "true", None, None))
    rows = conn.execute(
        "select user_id, host_time, member_time, time_difference, is_synced"
        " from public.sync_records order by user_id"
    ).fetchall()
    assert rows == [
        ("a", 10, 10, 0, True),
        ("b", 10, Decimal("12.50"), Decimal("2.50"), False),
        ("c", 10, Decimal("7.99"), Decimal("2.01"), False),
        ("d", 10, 11, 1, True),
    ]


def test_comments_are_deleted_with_their_room(conn):
    # A room's chat never outlives the room (it would become public episode comments).
    insert_room(conn)
    conn.execute(
        "insert into public.comments (anime_id, room_id, episode_number, user_id, username, message)"
        " values ('a1', 'abcdefghij', 1, 'u1', 'One', 'hello'),"
        " ('a1', null, 1, 'u1', 'One', 'an episode comment')"
    )
    conn.execute("delete from public.rooms")
    assert conn.execute("select room_id, message from public.comments").fetchall() == [
        (None, "an episode comment")
    ]
