"""Identity under transaction pooling: pgbouncer never carries one user's identity into
another's transaction, because identity is only ever transaction-local."""

from __future__ import annotations

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
watchium = host={target.hostname} port={target.port} dbname={target.path.lstrip('/')} user={target.username}

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
                    seen = [r for (r,) in c.execute("select room_id from public.rooms where not is_public")]
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
                if row is None or (row[0] or "") != "" or (row[1] or "") != "" or row[2] != "postgres":
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
