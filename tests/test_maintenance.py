"""public.maintain(): every periodic job in one call, and `watchium-db maintain`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from watchium_db.testing import as_user


def test_maintain_runs_every_job(conn):
    conn.execute(
        "insert into watchium_private.rate_limit_counters (subject, action, window_minutes, window_start, request_count)"
        " values ('u1', 'comment', 1, now() - interval '2 days', 5), ('u1', 'comment', 1, now(), 1)"
    )
    summary = conn.execute("select public.maintain()").fetchone()[0]
    assert set(summary) == {"rooms", "queues", "sync_history", "sync_deadlines", "room_events",
                            "rate_limits", "skipped", "ran_at"}  # fmt: skip
    assert summary["skipped"] == []
    assert summary["rate_limits"] == {"rate_limit_windows_deleted": 1}
    assert conn.execute("select count(*) from watchium_private.rate_limit_counters").fetchone() == (1,)
    # Partitions ahead were created by the sync history job.
    partitions = conn.execute(
        "select count(*) from pg_inherits where inhparent = 'public.sync_states'::regclass"
    ).fetchone()[0]
    assert partitions >= 2  # the default partition and at least the current hour


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_clients_cannot_run_maintenance(conn, role):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(conn, "alice", role=role) as c:
        c.execute("select public.maintain()")


def test_service_role_can_run_maintenance(conn):
    with as_user(conn, None, role="service_role") as c:
        assert c.execute("select public.maintain() ? 'rooms'").fetchone() == (True,)


def test_cli_maintain(watchium_db_url):
    env = {**os.environ, "WATCHIUM_DATABASE_URL": watchium_db_url}
    out = subprocess.run(
        [sys.executable, "-m", "watchium_db.cli", "maintain", "--json"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    assert set(json.loads(out)) >= {"rooms", "sync_history", "room_events", "rate_limits"}
    text = subprocess.run(
        [sys.executable, "-m", "watchium_db.cli", "maintain"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    assert "rooms:" in text and "sync history:" in text
