"""Reliability: migrations applied while clients call the RPCs.

Clients keep calling the RPCs of the revision they started on (one connection per thread, as
different users) while `alembic upgrade head`, `downgrade`, `upgrade head` run with a short
WATCHIUM_MIGRATION_LOCK_TIMEOUT. A migration that cannot get its lock fails fast and is retried
(that is the migration's problem, not the clients'): clients see no error beyond the API's own
answers and retriable lock timeouts (55P03), and nothing written before or during is lost.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from reliability_helpers import (
    API_ERRORS,
    HOST_VIOLATIONS,
    STATE_VIOLATIONS,
    Ledger,
    Workload,
    check_state,
    make_rooms,
    verify_membership,
)

from watchium_db import migrate
from watchium_db.testing import create_database, drop_database, install_supabase_standin


@pytest.fixture
def db_at(watchium_server, request):
    name = f"watchium_rel_upgrade_{os.getpid()}_{request.node.name[-20:]}".lower()
    url = create_database(watchium_server, name)
    install_supabase_standin(url)
    yield url
    drop_database(watchium_server.maintenance_url, name)


def migrate_retrying(action, url, revision, attempts=30):
    """Runs one migration step, retrying when it gave up on its lock timeout."""
    for attempt in range(1, attempts + 1):
        try:
            action(url, revision)
            return attempt
        except Exception as exc:  # sqlalchemy wraps psycopg's LockNotAvailable
            if "lock timeout" not in str(exc) or attempt == attempts:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def user_comments(conn):
    return conn.execute(
        "select count(*) from public.comments"
        " where user_id is not null and not is_anchor and not is_system_message"
    ).fetchone()[0]


def run_under_load(url, start, steps, operations, check_sql, monkeypatch, conn_factory):
    monkeypatch.setenv("WATCHIUM_MIGRATION_LOCK_TIMEOUT", "1s")
    migrate.upgrade(url, start)
    with conn_factory(url) as conn:
        conn.execute("update watchium_private.rate_limit_rules set max_requests = 1000000")
        ledger = Ledger()
        rooms = make_rooms(conn, 12, ledger)
    load = Workload(url, rooms, ledger, workers=6, ops_per_worker=10**6, maintenance=False,
                    operations=operations, allowed=API_ERRORS | {"55P03"}, check_sql=check_sql,
                    seed=21)
    runner = threading.Thread(target=load.run, kwargs={"timeout": 100})
    runner.start()
    attempts = []
    try:
        time.sleep(1.0)  # traffic before the migration
        before_ops = sum(ledger.ops.values())
        for action, revision in steps:
            attempts.append(f"{action.__name__} {revision}: {migrate_retrying(action, url, revision)} try")
            time.sleep(0.5)  # traffic on the new revision
    finally:
        load.stop.set()
        runner.join(60)
    assert migrate.current_revision(url) == migrate.head_revision()
    print(f"\nupgrade under load from {start}: {attempts} {ledger.summary()}")
    assert ledger.failures == [], (ledger.failures[:5], ledger.summary())
    assert sum(ledger.ops.values()) > before_ops + 50, ledger.summary()  # clients kept going
    with conn_factory(url) as conn:
        # Nothing lost: every comment a client was told it posted is there; membership is
        # exactly what the join/leave/kick answers said; every invariant holds at head.
        assert user_comments(conn) == ledger.ops["comment"], ledger.summary()
        verify_membership(conn, ledger)
        assert check_state(conn) == [], ledger.summary()
    return ledger


def test_upgrade_0007_to_head_and_back_under_load(db_at, monkeypatch):
    ledger = run_under_load(
        db_at, "0007",
        [(migrate.upgrade, "head"), (migrate.downgrade, "0007"), (migrate.upgrade, "head")],
        ("join", "join", "leave", "play_pause", "seek", "heartbeat", "heartbeat", "comment"),
        STATE_VIOLATIONS,
        monkeypatch,
        lambda url: psycopg.connect(url, autocommit=True),
    )
    assert ledger.ops["heartbeat"] > 0 and ledger.ops["seek"] > 0


@pytest.mark.slow
def test_upgrade_0005_to_head_under_load(db_at, monkeypatch):
    ledger = run_under_load(
        db_at, "0005",
        [(migrate.upgrade, "head")],
        ("join", "join", "leave", "kick", "transfer", "comment", "privacy"),
        HOST_VIOLATIONS,
        monkeypatch,
        lambda url: psycopg.connect(url, autocommit=True),
    )
    assert ledger.ops["join"] > 0 and ledger.ops["comment"] > 0
