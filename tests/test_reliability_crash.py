"""Reliability: crashes (a backend killed with SIGKILL, and an immediate shutdown) while
joins, leaves, host controls, comments, heartbeats and maintenance run; no acknowledged write
may be lost (issue 17.10).

Each worker owns one room (its host) and its own users, and does one call at a time, so the
last acknowledged call says what the database must hold after the crash: the room's position
is the last acknowledged seek, each user is a member iff its last acknowledged membership call
was a join, every acknowledged comment is there exactly once, and every acknowledged join has
exactly its member_joined event in the log (no event lost or duplicated). The one call in flight
at the crash may or may not have committed: what it touches is left out of the exact checks.
Afterwards every invariant of the reliability suite holds and maintenance runs clean.

Heartbeats commit without waiting for the WAL flush (docs/architecture.md, Durability): they
are not acknowledged writes in this sense; tests/test_durability.py covers them. Listener
crash/resume (the event stream a consumer sees across a crash) is covered by the listener
tests (tests/test_listener.py).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from reliability_helpers import STATE_VIOLATIONS, sqlstate_of

from watchium_db import migrate
from watchium_db.testing import as_user

CREATE = (
    "select public.create_room(p_title => 'Party', p_anime_id => 'a1', p_anime_title => 'Anime',"
    " p_episode_number => 1, p_video_url => 'https://example.com/v', p_username => %s)"
)
COMMENT = (
    "select public.post_comment(%s, %s, %s, %s, null, %s, null, %s::numeric)"
)


@dataclass
class Owner:
    """What one worker was told, and what it had in flight."""

    room_id: str
    host: str
    users: list[str]
    last_seek: float | None = None
    members: dict[str, bool] = field(default_factory=dict)  # user -> member after last ack
    joins: Counter[str] = field(default_factory=Counter)  # acknowledged joins per user
    comments: list[str] = field(default_factory=list)  # acknowledged comment messages
    in_flight: tuple[str, Any] | None = None
    attempted: Counter[str] = field(default_factory=Counter)
    succeeded: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def one(conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def call(conn: psycopg.Connection[Any], user: str | None, sql: str, params: Any = (),
         role: str = "authenticated") -> Any:
    with as_user(conn, user, role=role) as c:
        return one(c, sql, params)


def worker(url: str, owner: Owner, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    n = 0
    try:
        with psycopg.connect(url, autocommit=True, application_name="wd-crash-worker") as c:
            while not stop.is_set():
                n += 1
                kind = rng.choice(["join", "leave", "seek", "comment", "heartbeat"])
                owner.attempted[kind] += 1
                try:
                    if kind == "join":
                        user = rng.choice(owner.users)
                        owner.in_flight = ("user", user)
                        r = call(c, user, "select public.join_room(%s, null, %s)", (owner.room_id, user))
                        if r["status"] == "joined":
                            owner.joins[user] += 1
                        owner.members[user] = True
                    elif kind == "leave":
                        user = rng.choice(owner.users)
                        owner.in_flight = ("user", user)
                        call(c, user, "select public.leave_room(%s)", (owner.room_id,))
                        owner.members[user] = False
                    elif kind == "seek":
                        value = float(n % 5000)
                        owner.in_flight = ("seek", value)
                        call(c, owner.host, "select public.seek_to_time(%s, %s::numeric)",
                             (owner.room_id, value))
                        owner.last_seek = value
                    elif kind == "comment":
                        message = f"c {owner.room_id} {n}"
                        owner.in_flight = ("comment", message)
                        call(c, owner.host, COMMENT, ("a1", 1, message, owner.host, owner.room_id, 1))
                        owner.comments.append(message)
                    else:
                        owner.in_flight = ("heartbeat", None)
                        call(c, owner.host, "select public.record_heartbeat(%s, 1, false)",
                             (owner.room_id,))
                    owner.in_flight = None
                    owner.succeeded[kind] += 1
                except psycopg.Error as exc:
                    owner.errors[sqlstate_of(exc)] += 1
                    if c.broken or c.closed:
                        return  # the crash: the in-flight call stays uncertain
                    owner.in_flight = None  # refused: nothing committed
    except psycopg.Error:
        return


def maintainer(url: str, stop: threading.Event, runs: Counter[str]) -> None:
    try:
        with psycopg.connect(url, autocommit=True, application_name="wd-crash-maint") as c:
            while not stop.is_set():
                try:
                    call(c, None, "select public.maintain()", role="service_role")
                    runs["ok"] += 1
                except psycopg.Error as exc:
                    runs[sqlstate_of(exc)] += 1
                    if c.broken or c.closed:
                        return
                time.sleep(0.05)
    except psycopg.Error:
        return


def connect_when_up(url: str, timeout: float = 60) -> psycopg.Connection[Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["sigkill", "immediate"])
def test_no_acknowledged_write_is_lost_in_a_crash(crash):
    from watchium_db.devtools.bench import STANDIN_SQL, durable_server

    with durable_server() as server:
        with psycopg.connect(server.maintenance_url, autocommit=True) as conn:
            conn.execute('create database "watchium_crash"')
        url = server.url_for("watchium_crash")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(STANDIN_SQL.read_text().encode())
        migrate.upgrade(url, "head")
        owners = []
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("update watchium_private.rate_limit_rules set max_requests = 1000000")
            conn.execute("update watchium_private.settings set value = '\"1 hour\"'"
                         " where key = 'member_stale_after'")
            conn.execute("update watchium_private.settings set value = '\"0 seconds\"'"
                         " where key = 'heartbeat_min_interval'")
            conn.execute("select public.maintain()")
            for i in range(6):
                host = f"host{i}"
                room_id = call(conn, host, CREATE, (host,))["room"]["room_id"]
                owners.append(Owner(room_id, host, [f"u{i}x{j}" for j in range(6)]))
        stop = threading.Event()
        runs: Counter[str] = Counter()
        threads = [threading.Thread(target=worker, args=(url, o, stop, 100 + i))
                   for i, o in enumerate(owners)]
        threads.append(threading.Thread(target=maintainer, args=(url, stop, runs)))
        for t in threads:
            t.start()
        time.sleep(4)
        if crash == "sigkill":
            # A worker's backend, preferably in the middle of a statement; at a given instant
            # every worker may be between calls, so look for a moment.
            with psycopg.connect(url, autocommit=True) as conn:
                deadline = time.monotonic() + 5
                while True:
                    row = conn.execute(
                        "select pid from pg_stat_activity where application_name ="
                        " 'wd-crash-worker' and (state = 'active' or %s)"
                        " order by random() limit 1",
                        (time.monotonic() > deadline,),
                    ).fetchone()
                    if row is not None:
                        pid = row[0]
                        break
                    time.sleep(0.01)
            # The postmaster resets every backend and recovers from the WAL.
            os.kill(pid, signal.SIGKILL)
        else:
            server._run(str(server.bindir / "pg_ctl"), "stop", "-D", str(server.data_dir),
                        "-m", "immediate")
        for t in threads:
            t.join(30)
        stop.set()
        if crash == "immediate":
            server.start()
            server.wait_ready()
        with connect_when_up(url) as conn:
            lost: list[Any] = []
            duplicated: list[Any] = []
            for o in owners:
                uncertain = o.in_flight
                # The room's position: the last acknowledged seek (or the one in flight).
                position = float(one(conn, "select current_playback_time from public.rooms"
                                           " where room_id = %s", (o.room_id,)))
                allowed = {o.last_seek if o.last_seek is not None else 0.0}
                if uncertain and uncertain[0] == "seek":
                    allowed.add(uncertain[1])
                if position not in allowed:
                    lost.append(("seek", o.room_id, o.last_seek, position))
                # Membership and the member_joined events of every user.
                present = {u for (u,) in conn.execute(
                    "select user_id from public.room_members where room_id = %s", (o.room_id,))}
                events = Counter(u for (u,) in conn.execute(
                    "select payload->>'user_id' from watchium_private.room_events"
                    " where room_id = %s and event = 'member_joined'", (o.room_id,)))
                for user in o.users:
                    if uncertain == ("user", user):
                        continue
                    if o.members.get(user, False) != (user in present):
                        lost.append(("membership", o.room_id, user, o.members.get(user)))
                    if events[user] < o.joins[user]:
                        lost.append(("member_joined", o.room_id, user, o.joins[user], events[user]))
                    if events[user] > o.joins[user]:
                        duplicated.append(("member_joined", o.room_id, user, o.joins[user], events[user]))
                # Comments: every acknowledged one, exactly once.
                stored = Counter(m for (m,) in conn.execute(
                    "select message from public.comments where room_id = %s and not is_system_message",
                    (o.room_id,)))
                for message in o.comments:
                    if stored[message] == 0:
                        lost.append(("comment", message))
                    elif stored[message] > 1:
                        duplicated.append(("comment", message))
            attempted = sum((o.attempted for o in owners), Counter())
            succeeded = sum((o.succeeded for o in owners), Counter())
            errors = sum((o.errors for o in owners), Counter())
            violations = conn.execute(STATE_VIOLATIONS).fetchall()
            print(f"\ncrash ({crash}): attempted={sum(attempted.values())} {dict(attempted)}"
                  f" succeeded={sum(succeeded.values())} errors={dict(errors)}"
                  f" maintain={dict(runs)} lost={len(lost)} duplicated={len(duplicated)}"
                  f" violations={len(violations)}")
            assert sum(succeeded.values()) > 100, succeeded
            assert lost == [] and duplicated == [], (lost[:5], duplicated[:5])
            assert violations == []
            # Maintenance after recovery: runs clean, partitions in order.
            after = call(conn, None, "select public.maintain()", role="service_role")
            assert after["skipped"] == [], after
            assert one(conn, "select public.sync_history_health()")["ok"]
