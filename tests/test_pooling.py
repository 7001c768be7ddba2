"""Behind pgbouncer in transaction mode: identity never carries from one user's transaction into
another's (it is only ever transaction-local), and the shipped client runs the statement it was
asked to run (no server-side prepared statements) while many users share server connections."""

from __future__ import annotations

import asyncio
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from watchium_db.client import Client, Session
from watchium_db.testing import make_room
from watchium_db.testing.support import password_of

pytestmark = pytest.mark.slow

USERS = [f"user{i:02d}" for i in range(20)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pgbouncer_url(watchium_db_url: str) -> Iterator[str]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    assert Path(binary).exists(), "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
    target = urlsplit(watchium_db_url)
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="watchium-pgbouncer-"))
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
watchium = host={target.hostname} port={target.port} dbname={target.path.lstrip("/")} user={target.username} password={password_of(watchium_db_url)}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
auth_type = any
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
unix_socket_dir =
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    argv = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        argv = ["runuser", "-u", "postgres", "--", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"postgresql://{target.username}@127.0.0.1:{port}/watchium"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_identity_never_leaks_between_pooled_transactions(conn, pgbouncer_url):
    # Each user is the only member of a private room named after them.
    for user in USERS:
        room = f"room{user[-2:]}priv"
        conn.execute(
            "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,"
            " host_user_id, host_username, is_public) values (%s, 't', 'a', 'A', 1, 'https://x.y/v', %s, %s, false)",
            (room, user, user),
        )
        conn.execute(
            "insert into public.room_members (room_id, user_id, username, is_host) values (%s, %s, %s, true)",
            (room, user, user),
        )

    errors: list[str] = []
    done = [0]
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        # prepare_threshold=None: pgbouncer in transaction mode cannot keep prepared statements.
        with psycopg.connect(pgbouncer_url, prepare_threshold=None) as c:
            for _ in range(50):
                user = rng.choice([*USERS, None])
                with c.transaction():
                    if user is None:
                        c.execute("set local role anon")
                    elif rng.random() < 0.5:
                        c.execute(
                            "select set_config('request.jwt.claims', %s, true)",
                            (f'{{"sub": "{user}", "role": "authenticated"}}',),
                        )
                        c.execute("set local role authenticated")
                    else:
                        c.execute("select set_config('app.current_user_id', %s, true)", (user,))
                        c.execute("set local role authenticated")
                    seen = [
                        r
                        for (r,) in c.execute(
                            "select room_id from public.rooms where not is_public"
                        )
                    ]
                    expected = [] if user is None else [f"room{user[-2:]}priv"]
                    if seen != expected:
                        with lock:
                            errors.append(f"{user}: saw {seen}")
                # Outside any identity: the next transaction on this pooled server connection
                # starts clean.
                row = c.execute(
                    "select current_setting('request.jwt.claims', true), current_setting('app.current_user_id', true), current_user"
                ).fetchone()
                c.commit()
                if (
                    row is None
                    or (row[0] or "") != ""
                    or (row[1] or "") != ""
                    or row[2] != "postgres"
                ):
                    with lock:
                        errors.append(f"leaked state after commit: {row}")
                with lock:
                    done[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done[0] == 1000
    assert errors == []


def test_shipped_client_is_correct_behind_transaction_pooling(conn, pgbouncer_url):
    """Eight users, each the host of a private room, interleave reads, host controls, and joins
    and leaves of a shared room through pgbouncer (4 server connections), each with the shipped
    Client. Every result must be the caller's own, with no error: a prepared statement of one
    client connection run on another's server connection would fail (42P05, 26000) or, worse,
    run another user's statement (alice's get_room as bob's leave_room)."""
    users = [f"user{i:02d}" for i in range(8)]
    conn.execute("update watchium_private.rate_limit_rules set max_requests = 100000")
    rooms = {u: make_room(conn, host=u, private=True).room_id for u in users}
    lobby = make_room(conn, host="lobbyhost").room_id

    errors: list[str] = []
    done = [0]
    lock = threading.Lock()

    def step(me: Session, user: str, i: int, op: str) -> str | None:
        room = rooms[user]
        if op == "get_room":
            d = me.get_room(room)
            if (d.room.room_id, d.is_host, [m.user_id for m in d.members]) != (room, True, [user]):
                return (
                    f"get_room: {d.room.room_id} host={d.is_host} {[m.user_id for m in d.members]}"
                )
        elif op == "seek":
            p = me.seek_to_time(room, float(i))
            if (p.room_id, p.host_user_id, p.current_time) != (room, user, float(i)):
                return f"seek: {p.room_id} {p.host_user_id} {p.current_time}"
        elif op == "sync_state":
            st = me.get_room_sync_state(room)
            if st.room_id != room or st.host_user_id != user or st.me is None:
                return f"sync_state: {st.room_id} {st.host_user_id} me={st.me}"
        elif op == "join":
            j = me.join_room(lobby, username=user)
            where = j.membership.room_id if j.membership else None
            if (j.status, where, j.membership and j.membership.user_id) != ("joined", lobby, user):
                return f"join: {j.status} {where}"
        else:
            left = me.leave_room(lobby)
            if (left.status, left.room_id) != ("left", lobby):
                return f"leave: {left.status} {left.room_id}"
        return None

    def client(user: str, seed: int) -> None:
        rng = random.Random(seed)
        in_lobby = False
        with Client(pgbouncer_url, max_size=2) as c:
            me = c.as_user(user)
            for i in range(125):
                op = rng.choice(["get_room", "seek", "sync_state", "lobby"])
                if op == "lobby":
                    op = "leave" if in_lobby else "join"
                try:
                    problem = step(me, user, i, op)
                    if op in ("join", "leave") and problem is None:
                        in_lobby = op == "join"
                except Exception as exc:
                    problem = f"{op}: {type(exc).__name__}: {exc}"
                with lock:
                    done[0] += 1
                    if problem is not None:
                        errors.append(f"{user}: {problem}")

    threads = [threading.Thread(target=client, args=(u, i)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done[0] == 1000
    assert errors == []
    for user, room in rooms.items():  # nobody left their own room, every host stayed
        members = conn.execute(
            "select user_id, is_host from public.room_members where room_id = %s", (room,)
        ).fetchall()
        assert members == [(user, True)]


def test_listener_through_transaction_pooling_says_it_needs_a_session(pgbouncer_url):
    """LISTEN through pgbouncer in transaction mode stays on a server connection the listener
    no longer holds: notifications never arrive. The listener must say so, not wait forever."""
    from watchium_db.listener import ListenerNeedsSession, RoomListener

    async def scenario() -> None:
        listener = RoomListener(pgbouncer_url, "poolroom01", session_probe_timeout=1.0)
        try:
            async with asyncio.timeout(30):
                async for _ in listener:
                    pass
        finally:
            await listener.close()

    with pytest.raises(ListenerNeedsSession, match="LISTEN"):
        asyncio.run(scenario())
