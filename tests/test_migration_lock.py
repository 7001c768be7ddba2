"""Overlapping upgrades: every online migration run holds one advisory lock, so a second
`watchium-db upgrade` waits for the first (then finds the database at head) or says another
upgrade is running. Without it two runs collide (duplicate key in pg_proc, pg_namespace)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from watchium_db import migrate

ROOT = Path(__file__).resolve().parent.parent
KEY = 0x7761746368697564  # migrations/env.py MIGRATION_LOCK_KEY


def _upgrade(url: str, wait: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WATCHIUM_DATABASE_URL": url, "WATCHIUM_MIGRATION_WAIT": wait}
    return subprocess.Popen(
        [sys.executable, "-m", "watchium_db.cli", "upgrade"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _waiting_on_advisory_lock(conn: psycopg.Connection, count: int) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (waiting,) = conn.execute(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and wait_event = 'advisory'"
        ).fetchone()
        if waiting >= count:
            return True
        time.sleep(0.1)
    return False


def test_overlapping_upgrades_wait_for_each_other_and_both_succeed(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as holder:
        # Stand in for a first upgrade that is still running: both runs must queue behind it.
        holder.execute("select pg_advisory_lock(%s)", (KEY,))
        runs = [_upgrade(empty_db_url, "120"), _upgrade(empty_db_url, "120")]
        try:
            assert _waiting_on_advisory_lock(holder, 2)
            assert migrate.current_revision(empty_db_url) is None  # nothing ran past the lock
            holder.execute("select pg_advisory_unlock(%s)", (KEY,))
            outcomes = [run.communicate(timeout=300) for run in runs]
        finally:
            for run in runs:
                run.kill()
    assert [run.returncode for run in runs] == [0, 0], outcomes
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute(
            "select count(*) from pg_proc"
            " where proname = 'maintain' and pronamespace = 'public'::regnamespace"
        ).fetchone() == (1,)


def test_a_second_upgrade_that_may_not_wait_says_another_is_running(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (KEY,))
        (pid,) = holder.execute("select pg_backend_pid()").fetchone()
        run = _upgrade(empty_db_url, "0")
        _, err = run.communicate(timeout=120)
        assert run.returncode == 1
        assert "another watchium-db upgrade or downgrade is running" in err
        assert f"backend pid {pid}" in err and "WATCHIUM_MIGRATION_WAIT" in err
        assert migrate.current_revision(empty_db_url) is None
        # A bounded wait gives up the same way.
        run = _upgrade(empty_db_url, "0.5")
        _, err = run.communicate(timeout=120)
        assert run.returncode == 1 and "gave up after waiting 0.5 s" in err


def test_bad_migration_wait_is_refused(empty_db_url):
    run = _upgrade(empty_db_url, "soon")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1
    assert "WATCHIUM_MIGRATION_WAIT must be a number of seconds" in err
    assert migrate.current_revision(empty_db_url) is None


def test_the_lock_is_released_on_a_callers_connection(empty_db_url):
    """A caller's own connection (alembic's config.attributes) keeps no advisory lock after the
    run, after a success and after a failure alike."""
    from alembic import command
    from sqlalchemy import create_engine, pool, text

    from watchium_db.database import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(empty_db_url), poolclass=pool.NullPool)
    held = "select count(*) from pg_locks where pid = pg_backend_pid() and locktype = 'advisory'"
    try:
        with engine.connect() as connection:
            cfg = migrate.alembic_config(empty_db_url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0002")
            assert connection.execute(text(held)).scalar() == 0
            connection.commit()
            # 0003 fails: a table of the same name is in the way.
            connection.execute(text("create table watchium_private.settings (x int)"))
            connection.commit()
            with pytest.raises(Exception, match="already exists"):
                command.upgrade(cfg, "0003")
            assert connection.execute(text(held)).scalar() == 0
    finally:
        engine.dispose()
    assert migrate.current_revision(empty_db_url) == "0002"
