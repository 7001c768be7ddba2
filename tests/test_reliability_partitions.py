"""Reliability: creating a sync history partition while history rows are being written.

Found by the mixed workload (test_reliability_concurrency): maintain_sync_history moved the
hour's rows out of the default partition under its statement snapshot, then attached the new
partition; a row inserted into the default partition by a transaction that committed in between
made ATTACH PARTITION's check of the default partition fail (23514 "updated partition constraint
for default partition would be violated"), which rolled back the whole maintain() run. Under a
steady stream of heartbeats and controls the current hour's partition was never created.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from watchium_db.testing import as_user

HOUR_PARTITION = (
    "select 'public.sync_states_p' || to_char(now() at time zone 'UTC', 'YYYYMMDDHH24')"
)


def test_partition_created_while_a_writer_commits_rows_for_its_hour(watchium_db_url, conn):
    name = conn.execute(HOUR_PARTITION).fetchone()[0]
    conn.execute(f"drop table if exists {name}")  # start with this hour in the default partition
    with psycopg.connect(watchium_db_url) as writer:
        # An open transaction has written a history row of this hour (into the default partition).
        writer.execute(
            "insert into public.sync_states (room_id, user_id, host_time, member_time,"
            " time_difference, is_synced, sync_event_type) values ('r', 'u', 1, 1, 0, true, 'seek')"
        )
        outcome: list[Any] = []

        def maintain() -> None:
            with psycopg.connect(watchium_db_url, autocommit=True) as c:
                try:
                    with as_user(c, None, role="service_role") as s:
                        outcome.append(s.execute("select public.maintain()").fetchone())
                except psycopg.Error as exc:
                    outcome.append(exc)

        thread = threading.Thread(target=maintain)
        thread.start()
        # Wait until maintenance waits for the writer's lock, then let the writer commit.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = conn.execute(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                " and datname = current_database()"
            ).fetchone()
            if row and row[0]:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("maintenance never waited for the writer")
        writer.commit()
        thread.join(30)
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    created = outcome[0][0]["sync_history"]["created"]
    assert name.split(".")[1] in created, created
    # The committed row moved into the new partition; nothing of this hour stays in the default.
    assert conn.execute(f"select count(*) from {name} where room_id = 'r'").fetchone() == (1,)
    assert conn.execute(
        "select count(*) from public.sync_states_default where room_id = 'r'"
    ).fetchone() == (0,)
