"""Upgrading from the last release to head, on a database that holds data.

Released revisions never change (migrations/checksums.json); every later change is a new
revision. This builds a database at the head of the last release, fills it through the RPCs that
release had (public and private rooms, members, comments, heartbeats, host controls, history),
upgrades it to head, and checks that nothing was lost, that the RPCs still work on the upgraded
data, and that the upgraded schema is the schema a fresh install gets.
"""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg
import pytest

from watchium_db import migrate
from watchium_db.devtools import release_checksums, schema_dump
from watchium_db.testing import (
    TestServer,
    as_user,
    create_database,
    drop_database,
    install_supabase_standin,
)

MEMBERS = ("bea", "cem", "dia")


def _rpc(conn: psycopg.Connection[Any], user: str, sql: str, params: Any = None) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    return row[0] if row else None


def _age_presence(conn: psycopg.Connection[Any]) -> None:
    """Heartbeats of one member are accepted once a second: move the last ones back."""
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = last_heartbeat"
        " - interval '10 seconds', last_sample_at = last_sample_at - interval '10 seconds'"
    )


def _fill(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Rooms, members, comments, heartbeats and controls, through the released RPCs."""
    rooms: dict[str, Any] = {}
    for label, public in (("public", True), ("private", False)):
        created = _rpc(
            conn,
            "ada",
            "select public.create_room(p_title => %s, p_anime_id => 'a1',"
            " p_anime_title => 'Anime', p_episode_number => 1,"
            " p_video_url => 'https://example.com/v.m3u8', p_username => 'Ada',"
            " p_is_public => %s)",
            (f"The {label} room", public),
        )
        room_id = created["room"]["room_id"]
        for user in MEMBERS:
            joined = _rpc(
                conn,
                user,
                "select public.join_room(%s, %s, %s)",
                (room_id, created["access_key"], user.title()),
            )
            assert joined is not None
        _age_presence(conn)
        for user in ("ada", *MEMBERS):
            _rpc(conn, user, "select public.record_heartbeat(%s, 12, true)", (room_id,))
        _rpc(conn, "ada", "select public.seek_to_time(%s, 42)", (room_id,))
        _rpc(
            conn,
            "bea",
            "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1,"
            " p_message => %s, p_username => 'Bea', p_room_id => %s)",
            (f"hello from the {label} room", room_id),
        )
        rooms[label] = {"room_id": room_id, "access_key": created["access_key"]}
    return rooms


def _snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What must survive the upgrade: the published rows and the private ones."""
    queries = {
        "rooms": "select room_id, title, is_public, host_user_id, current_playback_time,"
        " playback_speed, is_playing from public.rooms order by room_id",
        "members": "select room_id, user_id, username, is_host from public.room_members"
        " order by room_id, user_id",
        "comments": "select id, room_id, user_id, message, is_system_message from public.comments"
        " order by id",
        "keys": "select room_id, access_key from watchium_private.room_secrets order by room_id",
        "presence": "select room_id, user_id, reported_time from watchium_private.member_presence"
        " order by room_id, user_id",
        "history": "select count(*) from public.sync_states",
        "events": "select count(*) from watchium_private.room_events",
    }
    return {
        name: json.loads(json.dumps(conn.execute(sql).fetchall(), default=str))
        for name, sql in queries.items()
    }


@pytest.fixture
def scratch(watchium_server: TestServer, request: pytest.FixtureRequest):
    names = []

    def make(label: str) -> str:
        name = f"watchium_release_{label}_{os.getpid()}"
        names.append(name)
        url = create_database(watchium_server, name)
        install_supabase_standin(url)
        return url

    yield make
    for name in names:
        drop_database(watchium_server.maintenance_url, name)


def test_upgrade_from_the_last_release_keeps_data_and_matches_a_fresh_install(
    watchium_server, scratch
):
    released = release_checksums.released_head()
    assert released is not None, (
        "no release is recorded in migrations/checksums.json (see CHANGELOG.md, 'Releasing')"
    )
    url = scratch("upgraded")
    migrate.upgrade(url, released)
    with psycopg.connect(url, autocommit=True) as conn:
        rooms = _fill(conn)
        before = _snapshot(conn)

    migrate.upgrade(url, "head")
    assert migrate.current_revision(url) == migrate.head_revision()

    with psycopg.connect(url, autocommit=True) as conn:
        # Nothing written before the upgrade was lost or changed.
        assert _snapshot(conn) == before
        # The RPCs work on the upgraded data: a member's heartbeat, the host's control, a
        # newcomer with the private room's key, a comment.
        private = rooms["private"]
        _age_presence(conn)
        status = _rpc(
            conn, "cem", "select public.record_heartbeat(%s, 42, false)", (private["room_id"],)
        )
        assert status["room_id"] == private["room_id"]
        state = _rpc(conn, "ada", "select public.seek_to_time(%s, 7)", (private["room_id"],))
        assert state["current_time"] == 7
        _rpc(
            conn,
            "eve",
            "select public.join_room(%s, %s, 'Eve')",
            (private["room_id"], private["access_key"]),
        )
        assert conn.execute(
            "select count(*) from public.room_members where room_id = %s",
            (private["room_id"],),
        ).fetchone() == (1 + len(MEMBERS) + 1,)

    # The upgraded schema is the schema of a fresh install at head.
    fresh = scratch("fresh")
    migrate.upgrade(fresh, "head")
    baseline = schema_dump.baseline_entries(watchium_server)
    upgraded_entries = schema_dump.render_all(schema_dump.entries_of(url, baseline))
    fresh_entries = schema_dump.render_all(schema_dump.entries_of(fresh, baseline))
    assert upgraded_entries == fresh_entries
