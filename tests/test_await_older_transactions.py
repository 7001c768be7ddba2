"""watchium_private.await_older_transactions(), which downgrades call before dropping a helper:
it waits for the transactions of this database that were running when it was called, not for
later ones, holds no lock while waiting, and gives up with 55P03 after lock_timeout."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

AWAIT = "select watchium_private.await_older_transactions()"


def test_it_waits_for_a_running_transaction_and_only_that(watchium_db_url, conn):
    with psycopg.connect(watchium_db_url) as older:
        older.execute("select txid_current()")  # a transaction in progress
        result: list[int] = []
        waiter = threading.Thread(
            target=lambda: result.append(
                psycopg.connect(watchium_db_url, autocommit=True).execute(AWAIT).fetchone()[0]
            )
        )
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive()  # still waiting for the older transaction
        # A transaction that began after the call does not hold it up.
        with psycopg.connect(watchium_db_url) as newer:
            newer.execute("select txid_current()")
            older.rollback()
            waiter.join(10)
            assert not waiter.is_alive() and result and result[0] >= 1
            newer.rollback()


def test_it_gives_up_with_55P03_after_lock_timeout(watchium_db_url, conn):
    with psycopg.connect(watchium_db_url) as older:
        older.execute("select 1")
        with psycopg.connect(watchium_db_url, autocommit=True) as c:
            c.execute("set lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"):
                c.execute(AWAIT)
        older.rollback()


def test_nothing_running_returns_at_once(watchium_db_url, conn):
    with psycopg.connect(watchium_db_url, autocommit=True) as c:
        assert c.execute(AWAIT).fetchone() is not None
