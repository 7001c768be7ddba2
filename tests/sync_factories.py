"""Factories for the sync tests: rooms and members created directly as the superuser.

The room RPC functions (join_room, ...) live in another revision; these tests need only rows.
A trigger creates each member's watchium_private.member_presence row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from watchium_db.testing import as_user

ROOM_ID = "syncroom01"


def make_room(
    conn: psycopg.Connection[Any],
    room_id: str = ROOM_ID,
    host: str = "host",
    members: Iterable[str] = ("alice", "bob"),
    *,
    playing: bool = False,
    position: float = 0,
    speed: float = 1,
    is_public: bool = True,
) -> str:
    """A room with ``host`` and ``members``; their presence is 10 s old (not throttled)."""
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,"
        " host_user_id, host_username, is_public, is_playing, current_playback_time, playback_speed)"
        " values (%s, 'Sync test', 'a1', 'Anime', 3, 'https://example.com/v.m3u8', %s, %s, %s, %s, %s, %s)",
        (room_id, host, host.title(), is_public, playing, position, speed),
    )
    add_members(conn, room_id, [host], host=True)
    add_members(conn, room_id, list(members))
    # The join trigger recorded a 'join' row per member; these tests count the history their
    # own calls write, so they start from an empty one.
    conn.execute("delete from public.sync_states where room_id = %s", (room_id,))
    age(conn, room_id, 10)
    return room_id


def add_members(
    conn: psycopg.Connection[Any], room_id: str, users: list[str], *, host: bool = False
) -> None:
    conn.execute(
        "insert into public.room_members (room_id, user_id, username, is_host)"
        " select %s, u, left(u, 50), %s from unnest(%s::text[]) as u",
        (room_id, host, users),
    )


def age(conn: psycopg.Connection[Any], room_id: str, seconds: float) -> None:
    """Move the room's clock back by ``seconds``: presence, samples and the playback reference."""
    shift = f"{seconds} seconds"
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = last_heartbeat - %s::interval,"
        " last_sample_at = last_sample_at - %s::interval where room_id = %s",
        (shift, shift, room_id),
    )
    conn.execute(
        "update public.rooms set playback_updated_at = playback_updated_at - %s::interval"
        " where room_id = %s",
        (shift, room_id),
    )


def heartbeat(
    conn: psycopg.Connection[Any],
    user: str,
    current_time: Any,
    is_playing: bool = True,
    room_id: str = ROOM_ID,
) -> dict[str, Any]:
    with as_user(conn, user) as c:
        row = c.execute(
            "select public.record_heartbeat(%s, %s::numeric, %s)",
            (room_id, current_time, is_playing),
        ).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


@contextmanager
def as_service(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    with as_user(conn, None, role="service_role") as c:
        yield c


BATCH_SQL = (
    "select * from public.record_heartbeats(%s, %s::text[], %s::numeric[], %s::boolean[])"
)


def batch_arguments(beats: list[tuple[Any, Any, Any]], room_id: str = ROOM_ID) -> tuple[Any, ...]:
    """record_heartbeats' arguments for ``(user_id, current_time, is_playing)`` triples."""
    return (
        room_id,
        [b[0] for b in beats],
        [None if b[1] is None else str(b[1]) for b in beats],
        [b[2] for b in beats],
    )


def batch(
    conn: psycopg.Connection[Any], beats: list[tuple[Any, Any, Any]], room_id: str = ROOM_ID
) -> dict[str, dict[str, Any]]:
    """Relay ``beats`` as the service role; the result rows by user id."""
    with as_service(conn) as c:
        cur = c.execute(BATCH_SQL, batch_arguments(beats, room_id))
        names = [d.name for d in cur.description or ()]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def events(
    conn: psycopg.Connection[Any], room_id: str = ROOM_ID, event: str | None = None
) -> list[Any]:
    rows = conn.execute(
        "select event, payload from watchium_private.room_events"
        " where room_id = %s and (%s::text is null or event = %s) order by event_id",
        (room_id, event, event),
    ).fetchall()
    return [(e, p) for e, p in rows]


def one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def dumps(value: Any) -> str:
    return json.dumps(value)
