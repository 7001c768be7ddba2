"""What heartbeats publish, measured by decoding the publication supabase_realtime (pgoutput,
restricted to the publication) from before the first heartbeat: every relation the stream
names is counted, partitions of sync_states included.

Heartbeats write the unpublished presence row and sample history into sync_states (a member's
first heartbeat, a level change, then at most one per member per minute); sync_states is not
published. The only published change a heartbeat makes is the room_members UPDATE of a member
whose is_synced flips (with its sync_status event). docs/realtime.md says exactly this.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import psycopg

from watchium_db.testing import as_user

ROOM = "fanout0001"
MEMBERS = [f"m{i:02d}" for i in range(50)]


def _changes(conn: psycopg.Connection[Any], slot: str) -> Counter[tuple[str, str]]:
    with conn.transaction():  # flush WAL: the test server runs with synchronous_commit = off
        conn.execute("set local synchronous_commit = on")
        conn.execute("select pg_logical_emit_message(true, 'watchium-test', 'flush')")
    rows = conn.execute(
        "select data from pg_logical_slot_get_binary_changes(%s, null, null,"
        " 'proto_version', '1', 'publication_names', 'supabase_realtime')",
        (slot,),
    ).fetchall()
    relations: dict[int, str] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for (data,) in rows:
        m = bytes(data)
        kind = chr(m[0])
        (relid,) = struct.unpack("!I", m[1:5])
        if kind == "R":
            nsp, rest = m[5:].split(b"\0", 1)
            relations[relid] = nsp.decode() + "." + rest.split(b"\0", 1)[0].decode()
        elif kind in "IUD":
            counts[(relations[relid], kind)] += 1
    return counts


def test_heartbeats_publish_only_a_members_sync_flip(conn):
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,"
        " host_user_id, host_username, current_playback_time, is_playing)"
        " values (%s, 'Fan-out', 'a1', 'Anime', 1, 'https://e.x/v', %s, 'Host', 100, false)",
        (ROOM, MEMBERS[0]),
    )
    conn.execute(
        "insert into public.room_members (room_id, user_id, username, is_host, current_playback_time)"
        " select %s, u, u, u = %s, 100 from unnest(%s::text[]) as u",
        (ROOM, MEMBERS[0], MEMBERS),
    )
    conn.execute("select pg_create_logical_replication_slot('watchium_fanout', 'pgoutput', true)")
    events_before = conn.execute("select count(*) from watchium_private.room_events").fetchone()
    history = "select count(*) from public.sync_states where sync_event_type = 'heartbeat'"

    def beat(member: str, position: float = 100) -> None:
        with as_user(conn, member) as c:
            c.execute("select public.record_heartbeat(%s, %s, %s)", (ROOM, position, False))

    def beat_round() -> None:
        for member in MEMBERS:
            # Paused at 100 s, everyone reports 100 s: nobody's sync status changes.
            beat(member)
        # The next round comes 3 s later, the clients' cadence.
        conn.execute(
            "update watchium_private.member_presence set last_heartbeat = last_heartbeat - interval '3 s'"
        )

    events = (
        "select count(*), count(*) filter (where event = 'sync_status')"
        " from watchium_private.room_events"
    )
    # 150 heartbeats from the first one of each member on. A member's first heartbeat is
    # sampled into history and announces its sync level (unknown until then) as a
    # sync_status room event; that is all.
    beat_round()
    first = conn.execute(events).fetchone()
    assert first == (events_before[0] + 50, 50)
    beat_round()
    beat_round()
    assert conn.execute(history).fetchone() == (50,)  # each member's first heartbeat
    assert _changes(conn, "watchium_fanout") == Counter()  # nothing, under any relation name
    assert conn.execute(events).fetchone() == first  # no status change, no event

    # One member drifts 10 s: its is_synced flips, one published UPDATE (and a sync_status
    # event); its history sample is not published.
    beat(MEMBERS[1], 110)
    assert _changes(conn, "watchium_fanout") == Counter({("public.room_members", "U"): 1})
    assert conn.execute(history).fetchone() == (51,)

    # Control: the decoder does count history rows, under the partitions' names, when the
    # table is published the way an existing Supabase publication would publish it.
    assert conn.execute(
        "select pubviaroot from pg_publication where pubname = 'supabase_realtime'"
    ).fetchone() == (False,)
    conn.execute("alter publication supabase_realtime add table public.sync_states")
    conn.execute(
        "update watchium_private.member_presence set last_sample_at = now() - interval '2 minutes',"
        " last_heartbeat = last_heartbeat - interval '3 s'"
    )
    for member in MEMBERS[2:12]:
        beat(member)
    counts = _changes(conn, "watchium_fanout")
    assert sum(counts.values()) == 10
    assert all(r.startswith("public.sync_states_") and k == "I" for r, k in counts), counts
