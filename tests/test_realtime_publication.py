"""Publication supabase_realtime: our three tables with their random replica keys as replica
identity; sync_states not published; existing publications and other tables are left alone, a
FOR ALL TABLES one is refused; logical decoding proves that no secret travels, that a DELETE
carries nothing about the room or the user, and that heartbeats (presence writes) publish
nothing."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import psycopg
import pytest

from watchium_db import migrate

OURS = ["comments", "room_members", "rooms"]


def _published(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select tablename from pg_publication_tables where pubname = 'supabase_realtime'"
            " and schemaname = 'public' order by 1"
        ).fetchall()
    ]


def test_our_tables_are_published_with_their_replica_keys_as_identity(conn):
    assert _published(conn) == OURS
    pub = conn.execute(
        "select puballtables, pubviaroot, pubinsert and pubupdate and pubdelete"
        " from pg_publication where pubname = 'supabase_realtime'"
    ).fetchone()
    assert pub == (False, False, True)  # created by us, as Supabase creates it
    identities = conn.execute(
        "select c.relname, c.relreplident, ic.relname, a.attname, i.indisunique"
        " from pg_class c join pg_index i on i.indrelid = c.oid and i.indisreplident"
        " join pg_class ic on ic.oid = i.indexrelid"
        " join pg_attribute a on a.attrelid = c.oid and a.attnum = any(i.indkey)"
        " where c.oid = any(array['public.rooms', 'public.room_members', 'public.comments']::regclass[])"
        " order by 1"
    ).fetchall()
    assert identities == [(t, "i", f"{t}_replica_key_idx", "replica_key", True) for t in OURS]
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
        assert _published(c) == ["comments", "other_app", "room_members", "rooms"]
        pvr = c.execute(
            "select pubviaroot from pg_publication where pubname = 'supabase_realtime'"
        ).fetchone()
        assert pvr == (False,)  # options not changed behind the other subscribers' backs
        report = c.execute("select public.realtime_health()").fetchone()[0]
        assert report["ok"] and report["warnings"] == []
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


def test_a_for_all_tables_publication_is_refused(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute("create publication supabase_realtime for all tables")
    migrate.upgrade(empty_db_url, "0005")
    with pytest.raises(Exception) as exc:
        migrate.upgrade(empty_db_url)
    cause = exc.value if isinstance(exc.value, psycopg.Error) else exc.value.__cause__
    assert isinstance(cause, psycopg.Error) and cause.sqlstate == "55000"
    assert "supabase_realtime is FOR ALL TABLES" in str(cause)
    assert cause.diag.message_hint is not None
    assert "create publication supabase_realtime for table" in cause.diag.message_hint
    assert migrate.current_revision(empty_db_url) == "0005"  # nothing of 0006 is left


@pytest.mark.parametrize(
    "other",
    [
        "alter publication supabase_realtime add table public.other_app",
        "alter publication supabase_realtime add tables in schema app_schema",
    ],
)
def test_downgrade_keeps_a_publication_we_created_once_others_use_it(watchium_db_url, other):
    with psycopg.connect(watchium_db_url, autocommit=True) as c:
        c.execute("create table public.other_app (id int primary key)")
        c.execute("create schema app_schema")
        c.execute(other)
    migrate.downgrade(watchium_db_url, "0005")
    with psycopg.connect(watchium_db_url, autocommit=True) as c:
        # Created by 0006, but another app's table or schema is in it now: kept, with only
        # our tables removed.
        assert c.execute(
            "select count(*) from pg_publication where pubname = 'supabase_realtime'"
        ).fetchone() == (1,)
        assert [t for t in _published(c) if t in OURS] == []
        in_it = c.execute(
            "select (select count(*) from pg_publication_rel pr where pr.prpubid = p.oid),"
            " (select count(*) from pg_publication_namespace pn where pn.pnpubid = p.oid)"
            " from pg_publication p where p.pubname = 'supabase_realtime'"
        ).fetchone()
        assert in_it == ((1, 0) if "other_app" in other else (0, 1))


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
    # History (sync_states and its partitions) is not published.
    assert {r for r, _ in counts} == {"public.rooms", "public.room_members", "public.comments"}
    # The statements above, as published (the join triggers add system comments, join
    # records and room activity updates; those are checked in the rooms tests).
    assert counts[("public.rooms", "I")] == 1
    assert counts[("public.room_members", "I")] == 3
    assert counts[("public.comments", "I")] >= 1
    # delete cascades: the room, its 3 members and its comments
    assert counts[("public.rooms", "D")] == 1
    assert counts[("public.room_members", "D")] == 3
    assert counts[("public.comments", "D")] == counts[("public.comments", "I")]


def _old_tuples(messages: list[bytes]) -> list[tuple[str, str, list[bytes | None]]]:
    """(relation, 'K' key or 'O' old row, column values) of every DELETE (pgoutput v1)."""
    relations: dict[int, str] = {}
    deletes: list[tuple[str, str, list[bytes | None]]] = []
    for m in messages:
        kind = chr(m[0])
        if kind == "R":
            (relid,) = struct.unpack("!I", m[1:5])
            nsp, rest = m[5:].split(b"\0", 1)
            name = rest.split(b"\0", 1)[0]
            relations[relid] = f"{nsp.decode()}.{name.decode()}"
        elif kind == "D":
            (relid,) = struct.unpack("!I", m[1:5])
            flag = chr(m[5])
            (ncols,) = struct.unpack("!H", m[6:8])
            pos, values = 8, []
            for _ in range(ncols):
                col = chr(m[pos])
                pos += 1
                if col == "t":
                    (length,) = struct.unpack("!I", m[pos : pos + 4])
                    values.append(m[pos + 4 : pos + 4 + length])
                    pos += 4 + length
                else:
                    values.append(None)
            deletes.append((relations[relid], flag, values))
    return deletes


def test_a_delete_carries_nothing_about_the_room_or_the_user(conn):
    """Realtime does not apply RLS to DELETE events: the old record reaches every subscriber.
    It must carry only the random replica key, never a room id, user id or comment id."""
    _room(conn, "privdelete", 3, public=False)
    conn.execute(
        "insert into public.comments (anime_id, room_id, episode_number, user_id, username, message)"
        " values ('a1', 'privdelete', 1, 'u002', 'User 2', 'private words')"
    )
    comment_id = conn.execute("select max(id) from public.comments").fetchone()[0]

    def replica_keys(table: str) -> set[str]:
        rows = conn.execute(
            f"select replica_key::text from public.{table} where room_id = 'privdelete'"
        ).fetchall()
        return {r[0] for r in rows}

    keys = replica_keys("rooms") | replica_keys("room_members")
    _start_slot(conn, "watchium_delete_check")
    # A member leaves (or is kicked), then the room goes with its members and comments.
    conn.execute(
        "delete from public.room_members where room_id = 'privdelete' and user_id = 'u001'"
    )
    comments = replica_keys("comments")  # the join/leave system comments and 'private words'
    keys |= comments
    conn.execute("delete from public.rooms where room_id = 'privdelete'")
    deletes = _old_tuples(_changes(conn, "watchium_delete_check"))
    assert Counter(r for r, _, _ in deletes) == Counter(
        {"public.room_members": 3, "public.rooms": 1, "public.comments": len(comments)}
    )
    for relation, flag, values in deletes:
        assert flag == "K", relation  # the replica identity key only, not the old row
        present = [v for v in values if v is not None]
        assert len(present) == 1 and present[0].decode() in keys, (relation, values)
        blob = b"".join(present)
        for secret in (b"privdelete", b"u000", b"u001", b"u002", b"private words"):
            assert secret not in blob
        assert str(comment_id).encode() != present[0]
    assert {present for _, _, values in deletes for present in values if present} == {
        k.encode() for k in keys
    }


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
