"""Publication supabase_realtime: our four tables with replica identity DEFAULT; existing
publications and other tables are left alone; logical decoding proves that no secret travels
and that heartbeats (presence writes) publish nothing."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import psycopg

from watchium_db import migrate

OURS = ["comments", "room_members", "rooms", "sync_states"]


def _published(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select tablename from pg_publication_tables where pubname = 'supabase_realtime'"
            " and schemaname = 'public' order by 1"
        ).fetchall()
    ]


def test_our_tables_are_published_with_default_replica_identity(conn):
    assert _published(conn) == OURS
    pub = conn.execute(
        "select puballtables, pubviaroot, pubinsert and pubupdate and pubdelete"
        " from pg_publication where pubname = 'supabase_realtime'"
    ).fetchone()
    assert pub == (False, True, True)  # created by us: partitions published as sync_states
    identities = conn.execute(
        "select relname, relreplident from pg_class where oid = any(array["
        "'public.rooms', 'public.room_members', 'public.comments', 'public.sync_states']::regclass[])"
        " order by 1"
    ).fetchall()
    assert identities == [(t, "d") for t in OURS]
    private = conn.execute(
        "select count(*) from pg_publication_tables where pubname = 'supabase_realtime'"
        " and schemaname <> 'public'"
    ).fetchone()
    assert private == (0,)


def test_existing_publication_and_other_tables_are_left_alone(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute("create table public.other_app (id int primary key)")
        c.execute("create publication supabase_realtime for table public.other_app")
    migrate.upgrade(empty_db_url, "0005")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        # The app team published rooms themselves before installing 0006.
        c.execute("alter publication supabase_realtime add table public.rooms")
    migrate.upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        # publish_via_partition_root is off, so sync_states shows up as its partitions.
        assert _published(c) == [
            "comments",
            "other_app",
            "room_members",
            "rooms",
            "sync_states_default",
        ]
        roots = c.execute(
            "select prrelid::regclass::text from pg_publication_rel pr join pg_publication p on p.oid = pr.prpubid"
            " where p.pubname = 'supabase_realtime' order by 1"
        ).fetchall()
        assert roots == [(t,) for t in sorted([*OURS, "other_app"])]
        pvr = c.execute(
            "select pubviaroot from pg_publication where pubname = 'supabase_realtime'"
        ).fetchone()
        assert pvr == (False,)  # not changed behind the other subscribers' backs
        report = c.execute("select public.realtime_health()").fetchone()[0]
        assert report["ok"] and any("publish_via_partition_root" in w for w in report["warnings"])
    migrate.downgrade(empty_db_url, "0005")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        # Only what 0006 added is gone: rooms was there before and stays, other_app stays.
        assert _published(c) == ["other_app", "rooms"]


def test_publication_created_by_us_is_dropped_on_downgrade(watchium_db_url):
    migrate.downgrade(watchium_db_url, "0005")
    with psycopg.connect(watchium_db_url) as c:
        assert c.execute(
            "select count(*) from pg_publication where pubname = 'supabase_realtime'"
        ).fetchone() == (0,)
    migrate.upgrade(watchium_db_url)
    with psycopg.connect(watchium_db_url) as c:
        assert _published(c) == OURS


# ---------------------------------------------------------------------------------------------
# logical decoding (pgoutput, restricted to the publication)
# ---------------------------------------------------------------------------------------------
def _start_slot(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute("select pg_create_logical_replication_slot(%s, 'pgoutput', true)", (name,))


def _changes(conn: psycopg.Connection[Any], name: str) -> list[bytes]:
    # The test server runs with synchronous_commit = off and decoding stops at flushed WAL:
    # one synchronous commit of a WAL-logged message (which pgoutput does not publish unless
    # asked) flushes everything before it.
    with conn.transaction():
        conn.execute("set local synchronous_commit = on")
        conn.execute("select pg_logical_emit_message(true, 'watchium-test', 'flush')")
    rows = conn.execute(
        "select data from pg_logical_slot_get_binary_changes(%s, null, null,"
        " 'proto_version', '1', 'publication_names', 'supabase_realtime')",
        (name,),
    ).fetchall()
    return [bytes(r[0]) for r in rows]


def _summarize(messages: list[bytes]) -> tuple[Counter[tuple[str, str]], set[str]]:
    """Count I/U/D messages per published relation name (pgoutput protocol v1)."""
    relations: dict[int, str] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for m in messages:
        kind = chr(m[0])
        if kind == "R":
            (relid,) = struct.unpack("!I", m[1:5])
            nsp, rest = m[5:].split(b"\0", 1)
            name = rest.split(b"\0", 1)[0]
            relations[relid] = f"{nsp.decode()}.{name.decode()}"
        elif kind in "IUD":
            (relid,) = struct.unpack("!I", m[1:5])
            counts[(relations[relid], kind)] += 1
    return counts, set(relations.values())


def _room(
    conn: psycopg.Connection[Any], room_id: str, members: int, *, public: bool = True
) -> None:
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,"
        " host_user_id, host_username, is_public)"
        " values (%s, 'visible-title-marker', 'a1', 'Anime', 1, 'https://e.x/v', 'u000', 'Host', %s)",
        (room_id, public),
    )
    conn.execute(
        "insert into public.room_members (room_id, user_id, username, is_host)"
        " select %s, 'u' || lpad(i::text, 3, '0'), 'User ' || i, i = 0 from generate_series(0, %s) as i",
        (room_id, members - 1),
    )


def test_no_secret_travels_in_any_change(conn):
    slot = "watchium_secret_check"
    _start_slot(conn, slot)
    _room(conn, "privroom01", 3, public=False)
    conn.execute(
        "insert into watchium_private.room_secrets (room_id, access_key) values ('privroom01', '987654')"
    )
    conn.execute(
        "update watchium_private.room_secrets set access_key = '918273' where room_id = 'privroom01'"
    )
    conn.execute("update public.rooms set is_playing = true where room_id = 'privroom01'")
    conn.execute(
        "insert into public.comments (anime_id, room_id, episode_number, user_id, username, message)"
        " values ('a1', 'privroom01', 1, 'u001', 'User 1', 'hello')"
    )
    conn.execute(
        "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
        " is_synced, sync_event_type) values ('privroom01', 'u001', 1, 1, 0, true, 'join')"
    )
    conn.execute(
        "select watchium_private.emit_room_event('privroom01', 'room_updated', '{\"k\": \"987654\"}')"
    )
    conn.execute("delete from public.rooms where room_id = 'privroom01'")
    messages = _changes(conn, slot)
    counts, relations = _summarize(messages)
    blob = b"".join(messages)
    assert b"visible-title-marker" in blob  # the decoder does see row data...
    assert b"987654" not in blob and b"918273" not in blob  # ...but never a key
    assert not any(r.startswith("watchium_private.") for r in relations)
    # Partition changes are published as the root (publish_via_partition_root = true).
    assert {r for r, _ in counts} == {
        "public.rooms",
        "public.room_members",
        "public.comments",
        "public.sync_states",
    }
    # The statements above, as published (the join triggers add system comments, join
    # records and room activity updates; those are checked in the rooms tests).
    assert counts[("public.rooms", "I")] == 1
    assert counts[("public.room_members", "I")] == 3
    assert counts[("public.comments", "I")] >= 1
    assert counts[("public.sync_states", "I")] >= 1
    # delete cascades: the room, its 3 members and its comments
    assert counts[("public.rooms", "D")] == 1
    assert counts[("public.room_members", "D")] == 3
    assert counts[("public.comments", "D")] == counts[("public.comments", "I")]


def test_heartbeats_in_a_50_member_room_publish_next_to_nothing(conn):
    """100 heartbeats (what record_heartbeat writes: the member's presence row) in a 50-member
    room, each its own transaction; 3 of them change a member's sync status and refresh its
    published snapshot. The seed's design published one room_members UPDATE per heartbeat
    (plus a sync_states INSERT): 100+ changes, each fanned out to all 50 subscribers."""
    _room(conn, "hbroom0001", 50)
    _start_slot(conn, "watchium_heartbeats")
    transitions = {17, 50, 83}
    for i in range(100):
        member = f"u{i % 50:03d}"
        with conn.transaction():
            conn.execute(
                "update watchium_private.member_presence set last_heartbeat = now(),"
                " reported_time = %s, is_playing = true, time_difference = 0.2, sync_level = 'good'"
                " where room_id = 'hbroom0001' and user_id = %s",
                (i, member),
            )
            if i in transitions:
                conn.execute(
                    "update public.room_members set is_synced = false, current_playback_time = %s,"
                    " last_heartbeat = now() where room_id = 'hbroom0001' and user_id = %s",
                    (i, member),
                )
    counts, _ = _summarize(_changes(conn, "watchium_heartbeats"))
    assert counts == Counter({("public.room_members", "U"): len(transitions)})
    assert sum(counts.values()) <= 100 // 10

    # Control: the seed's way (a published write per heartbeat) is what the decoder would show.
    for i in range(100):
        conn.execute(
            "update public.room_members set last_heartbeat = now() where room_id = 'hbroom0001' and user_id = %s",
            (f"u{i % 50:03d}",),
        )
    counts, _ = _summarize(_changes(conn, "watchium_heartbeats"))
    assert counts == Counter({("public.room_members", "U"): 100})
