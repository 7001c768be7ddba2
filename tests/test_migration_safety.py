"""Migrations on a busy database: a revision blocked by a long transaction fails fast."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from watchium_db import migrate

ROOT = Path(__file__).resolve().parent.parent


def test_blocked_migration_fails_fast_on_lock_timeout(empty_db_url):
    migrate.upgrade(empty_db_url, "0002")
    with psycopg.connect(empty_db_url) as reader:
        # A long-running reader holds ACCESS SHARE on rooms; 0003 needs ACCESS EXCLUSIVE
        # (enable row level security).
        reader.execute("select count(*) from public.rooms").fetchone()
        env = {**os.environ, "WATCHIUM_DATABASE_URL": empty_db_url, "WATCHIUM_MIGRATION_LOCK_TIMEOUT": "1s"}
        proc = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "0003"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,  # a hang guard only: the assertion is that it gave up on its lock
        )
        reader.rollback()
    assert proc.returncode != 0
    assert "lock timeout" in proc.stderr
    # Nothing of the failed revision stayed behind.
    assert migrate.current_revision(empty_db_url) == "0002"
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select to_regclass('watchium_private.settings')").fetchone() == (None,)


def test_queries_are_not_queued_behind_a_blocked_migration(empty_db_url):
    """While a migration waits for its lock, other readers still get through quickly."""
    migrate.upgrade(empty_db_url, "0002")
    with psycopg.connect(empty_db_url) as holder, psycopg.connect(empty_db_url, autocommit=True) as other:
        holder.execute("select count(*) from public.rooms").fetchone()
        env = {**os.environ, "WATCHIUM_DATABASE_URL": empty_db_url, "WATCHIUM_MIGRATION_LOCK_TIMEOUT": "2s"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "0003"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        try:
            # Wait until the migration is queued on the lock.
            deadline = time.monotonic() + 10
            waiting = False
            while time.monotonic() < deadline and not waiting:
                row = other.execute(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
                ).fetchone()
                waiting = bool(row and row[0])
                time.sleep(0.05)
            assert waiting, "the migration never waited for its lock"
            # A new reader queues behind the waiting ACCESS EXCLUSIVE request. The holder is
            # this same test, so without a lock timeout on the migration the reader would wait
            # forever (statement_timeout only turns that hang into an error): it gets through
            # because the migration gives up.
            other.execute("set statement_timeout = '120s'")
            assert other.execute("select count(*) from public.rooms").fetchone() == (0,)
        finally:
            proc.wait(timeout=30)
        holder.rollback()
    assert proc.returncode != 0
