"""Reliability: creating a sync history partition while history rows are being written.

Found by the mixed workload (test_reliability_concurrency): maintain_sync_history moved the
hour's rows out of the default partition under its statement snapshot, then attached the new
partition; a row inserted into the default partition by a transaction that committed in between
made ATTACH PARTITION's check of the default partition fail (23514 "updated partition constraint
for default partition would be violated"), which rolled back the whole maintain() run. Under a
steady stream of heartbeats and controls the current hour's partition was never created.

Now ATTACH needs the default partition's lock, which a writer of that partition holds until it
commits: maintenance does not wait for it (maintenance_lock_timeout), reports the hour as
skipped, and the next run moves the committed row and attaches the partition.
"""

from __future__ import annotations

import psycopg

from watchium_db.testing import as_user

HOUR_PARTITION = (
    "select 'public.sync_states_p' || to_char(now() at time zone 'UTC', 'YYYYMMDDHH24')"
)


def maintain(url: str) -> dict:
    with psycopg.connect(url, autocommit=True) as c, as_user(c, None, role="service_role") as s:
        row = s.execute("select public.maintain()").fetchone()
    assert row is not None
    return row[0]


def test_partition_created_while_a_writer_commits_rows_for_its_hour(watchium_db_url, conn):
    name = conn.execute(HOUR_PARTITION).fetchone()[0]
    conn.execute(f"drop table if exists {name}")  # start with this hour in the default partition
    with psycopg.connect(watchium_db_url) as writer:
        # An open transaction has written a history row of this hour (into the default partition).
        writer.execute(
            "insert into public.sync_states (room_id, user_id, host_time, member_time,"
            " time_difference, is_synced, sync_event_type) values ('r', 'u', 1, 1, 0, true, 'seek')"
        )
        first = maintain(watchium_db_url)  # does not wait for the writer
        skipped = [s for s in first["skipped"] if s["job"] == "sync_history"]
        assert {"job": "sync_history", "step": "attach", "table": name.split(".")[1],
                "reason": "lock busy"} in skipped, first
        writer.commit()
    second = maintain(watchium_db_url)
    assert name.split(".")[1] in second["sync_history"]["created"], second
    assert second["skipped"] == [], second
    # The committed row moved into the new partition; nothing of this hour stays in the default.
    assert conn.execute(f"select count(*) from {name} where room_id = 'r'").fetchone() == (1,)
    assert conn.execute(
        "select count(*) from public.sync_states_default where room_id = 'r'"
    ).fetchone() == (0,)
