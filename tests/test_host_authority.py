"""Host authority: one host per non-empty room, rooms.host_* in agreement, succession, races."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user

Conn = psycopg.Connection[Any]

CREATE = (
    "select public.create_room(p_title => 'Party', p_anime_id => 'a1', p_anime_title => 'Anime',"
    " p_episode_number => 1, p_video_url => 'https://example.com/v', p_username => %s)"
)

# Rooms breaking the invariants, read in one statement (one snapshot).
VIOLATIONS = """
select r.room_id, r.host_user_id, r.host_username, s.hosts, s.members
from public.rooms as r
cross join lateral (
  select count(*) filter (where m.is_host) as hosts,
         count(*) as members,
         max(m.user_id) filter (where m.is_host) as host_user_id,
         max(m.username) filter (where m.is_host) as host_username
  from public.room_members as m
  where m.room_id = r.room_id
) as s
where (s.members > 0 and (s.hosts <> 1
                          or r.host_user_id is distinct from s.host_user_id
                          or r.host_username is distinct from s.host_username))
   or (s.members = 0 and r.host_user_id is not null)
"""


def rpc(conn: Conn, user: str, sql: str, params: Any = ()) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def new_room(conn: Conn, host: str = "alice") -> str:
    room_id: str = rpc(conn, host, CREATE, (host.capitalize(),))["room"]["room_id"]
    return room_id


def join(conn: Conn, user: str, room_id: str) -> dict[str, Any]:
    result: dict[str, Any] = rpc(
        conn, user, "select public.join_room(%s, null, %s)", (room_id, user.capitalize())
    )
    return result


def host_of(conn: Conn, room_id: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "select host_user_id, host_username from public.rooms where room_id = %s", (room_id,)
    ).fetchone()


def test_host_leaving_hands_host_to_longest_present_member(conn):
    room_id = new_room(conn)
    for user in ("dave", "bob", "carol"):
        join(conn, user, room_id)
    rpc(conn, "alice", "select public.leave_room(%s)", (room_id,))
    assert host_of(conn, room_id) == ("dave", "Dave")
    assert conn.execute(
        "select user_id || ' ' || message from public.comments where is_system_message order by id desc limit 1"
    ).fetchone() == ("dave became the new host",)
    assert conn.execute(
        "select payload->>'host_user_id', payload->>'previous_host_user_id'"
        " from watchium_private.room_events where event = 'host_changed'"
    ).fetchall() == [("dave", "alice")]


def test_succession_ties_on_joined_at_broken_by_user_id(conn):
    room_id = new_room(conn)
    for user in ("zed", "bob", "carol"):
        join(conn, user, room_id)
    conn.execute(
        "update public.room_members set joined_at = '2026-01-01' where room_id = %s and user_id <> 'alice'",
        (room_id,),
    )
    rpc(conn, "alice", "select public.leave_room(%s)", (room_id,))
    assert host_of(conn, room_id) == ("bob", "Bob")


def test_database_keeps_invariants_for_direct_writes(conn):
    """A DBA deleting the host row directly still gets a successor and agreeing rooms.host_*."""
    room_id = new_room(conn)
    join(conn, "bob", room_id)
    conn.execute("delete from public.room_members where user_id = 'alice'")
    assert host_of(conn, room_id) == ("bob", "Bob")
    conn.execute("update public.room_members set username = 'Robert' where user_id = 'bob'")
    assert host_of(conn, room_id) == ("bob", "Robert")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "insert into public.room_members (room_id, user_id, username, is_host) values (%s, 'x', 'X', true)",
            (room_id,),
        )
    assert conn.execute(VIOLATIONS).fetchall() == []


def test_last_member_leaving_empties_room_and_next_joiner_becomes_host(conn):
    room_id = new_room(conn)
    rpc(conn, "alice", "select public.leave_room(%s)", (room_id,))
    assert host_of(conn, room_id) == (None, None)
    result = join(conn, "bob", room_id)
    assert result["membership"]["is_host"] is True and result["room"]["host_user_id"] == "bob"
    messages = [
        r[0]
        for r in conn.execute(
            "select user_id || ' ' || message from public.comments where is_system_message order by id"
        ).fetchall()
    ]
    assert messages == ["alice joined the room", "bob joined the room", "bob became the new host"]


def test_kicking_cannot_leave_room_without_host(conn):
    room_id = new_room(conn)
    join(conn, "bob", room_id)
    rpc(conn, "alice", "select public.transfer_host(%s, 'bob')", (room_id,))
    rpc(conn, "bob", "select public.kick_member(%s, 'alice')", (room_id,))
    assert host_of(conn, room_id) == ("bob", "Bob")
    assert conn.execute(VIOLATIONS).fetchall() == []


# ---------------------------------------------------------------------------------------------
# Concurrency: 8 connections, 2,000 random operations over 50 rooms
# ---------------------------------------------------------------------------------------------
WORKERS = 8
OPS_PER_WORKER = 250
ROOMS = 50
USERS = [f"u{i:02d}" for i in range(16)]
EXPECTED_ERRORS = {"42501", "P0002"}  # not the host any more / target already gone
MEMBERS = "select user_id from public.room_members where room_id = %s"


def test_random_membership_operations_keep_invariants(watchium_db_url, conn):
    conn.execute("update watchium_private.rate_limit_rules set max_requests = 1000000")
    rooms = [new_room(conn, f"owner{i:02d}") for i in range(ROOMS)]
    joined: Counter[tuple[str, str]] = Counter()
    removed: Counter[tuple[str, str]] = Counter()
    for room_id in rooms:
        joined[(room_id, room_id_owner(conn, room_id))] += 1
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)

    def worker(index: int) -> None:
        rng = random.Random(1000 + index)
        local_joined: Counter[tuple[str, str]] = Counter()
        local_removed: Counter[tuple[str, str]] = Counter()
        with psycopg.connect(watchium_db_url, autocommit=True) as c:
            start.wait()
            for step in range(OPS_PER_WORKER):
                room_id = rng.choice(rooms)
                op = rng.choice(["join", "join", "leave", "transfer", "kick", "stale"])
                # Targets of removals and transfers are mostly current members (read
                # before the call, so often already gone by then: that race is the point).
                current = [r[0] for r in c.execute(MEMBERS, (room_id,)).fetchall()]
                if op != "join" and current and rng.random() < 0.8:
                    user = rng.choice(current)
                else:
                    user = rng.choice(USERS)
                try:
                    if op == "join":
                        if join(c, user, room_id)["status"] == "joined":
                            local_joined[(room_id, user)] += 1
                    elif op == "leave":
                        result = rpc(c, user, "select public.leave_room(%s)", (room_id,))
                        if result["status"] == "left":
                            local_removed[(room_id, user)] += 1
                    elif op in ("transfer", "kick"):
                        host = host_of(c, room_id)
                        if host is None or host[0] is None or host[0] == user:
                            continue
                        if op == "transfer":
                            rpc(c, host[0], "select public.transfer_host(%s, %s)", (room_id, user))
                        else:
                            rpc(c, host[0], "select public.kick_member(%s, %s)", (room_id, user))
                            local_removed[(room_id, user)] += 1
                    else:
                        c.execute(
                            "update watchium_private.member_presence"
                            " set last_heartbeat = now() - interval '1 minute'"
                            " where room_id = %s and user_id = %s",
                            (room_id, user),
                        )
                        c.execute("select watchium_private.maintain_rooms()")
                except psycopg.Error as exc:
                    if exc.sqlstate not in EXPECTED_ERRORS:
                        with lock:
                            failures.append(
                                f"worker {index} step {step} {op}: {exc.sqlstate} {exc}"
                            )
                        return
                bad = c.execute(VIOLATIONS).fetchall()
                if bad:
                    with lock:
                        failures.append(f"worker {index} step {step} after {op}: {bad}")
                    return
        with lock:
            joined.update(local_joined)
            removed.update(local_removed)

    began = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    assert failures == [], failures[:5]

    # No member lost: a member is in the room iff its successful joins outnumber its removals
    # (leave, kick, and stale clean-ups, which maintenance logs as member_left events).
    for room_id, user in conn.execute(
        "select room_id, payload->>'user_id' from watchium_private.room_events"
        " where event = 'member_left' and payload->>'reason' = 'stale'"
    ).fetchall():
        removed[(room_id, user)] += 1
    present = set(conn.execute("select room_id, user_id from public.room_members").fetchall())
    for pair in set(joined) | set(removed) | present:
        net = joined[pair] - removed[pair]
        assert net in (0, 1), (pair, joined[pair], removed[pair])
        assert (pair in present) == (net == 1), (pair, joined[pair], removed[pair])
    assert conn.execute(VIOLATIONS).fetchall() == []
    # The operations really ran: every kind changed something, many times.
    events = dict(
        conn.execute(
            "select coalesce(payload->>'reason', event), count(*) from watchium_private.room_events"
            " group by 1"
        ).fetchall()
    )
    print(events, f"{elapsed:.1f}s")
    # The workload really exercised every path (the counts vary from run to run; these floors
    # are about half of what a run produces).
    assert events["left"] > 75 and events["stale"] > 75 and events["member_kicked"] > 25
    assert events["host_changed"] > 150 and events["member_joined"] > 250


def room_id_owner(conn: Conn, room_id: str) -> str:
    row = conn.execute(
        "select host_user_id from public.rooms where room_id = %s", (room_id,)
    ).fetchone()
    assert row is not None
    owner: str = row[0]
    return owner


def test_concurrent_joiners_of_an_empty_room_elect_one_host(watchium_db_url, conn):
    room_id = new_room(conn)
    rpc(conn, "alice", "select public.leave_room(%s)", (room_id,))
    barrier = threading.Barrier(8)
    results: list[Any] = []
    lock = threading.Lock()

    def call(index: int) -> None:
        with psycopg.connect(watchium_db_url, autocommit=True) as c:
            barrier.wait()
            try:
                outcome: Any = join(c, f"racer{index}", room_id)["membership"]["is_host"]
            except psycopg.Error as exc:
                outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [False] * 7 + [True]
    assert conn.execute(VIOLATIONS).fetchall() == []
    first = conn.execute(
        "select user_id from public.room_members where room_id = %s order by joined_at limit 1",
        (room_id,),
    ).fetchone()
    assert first is not None and host_of(conn, room_id) == (first[0], first[0].capitalize())
