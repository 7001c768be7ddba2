"""Maintenance never stalls a busy database (issue 17, items 1, 2 and 8).

- Partition DDL (create a day ahead with CREATE TABLE + ATTACH PARTITION, retire with DETACH +
  DROP) takes the locks RPCs conflict with only when they are free at once (never queues for
  them), its other locks under maintenance_lock_timeout: with a long reader or a long writer open,
  maintain() skips the step it cannot lock, says so in "skipped" (and sync_history_health()
  for doctor), and RPCs run with lock_timeout = 100ms meanwhile still succeed.
- Stale-member removal takes its locks in the documented order with SKIP LOCKED: a presence row
  a caller holds does not fail or stall the run, and a member whose heartbeat commits while
  maintenance runs is not removed.
- The default partition is drained in bounded batches; a detached partition is attached again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user

Conn = psycopg.Connection[Any]

CREATE = (
    "select public.create_room(p_title => 'Party', p_anime_id => 'a1', p_anime_title => 'Anime',"
    " p_episode_number => 1, p_video_url => 'https://example.com/v', p_username => %s)"
)
INSERT_AT = (
    "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
    " is_synced, sync_event_type, created_at)"
    " select 'r', 'u' || g, 1, 1, 0, true, 'heartbeat', %s::timestamptz from generate_series(1, %s) g"
)


def hour_name(conn: Conn, offset: str) -> str:
    row = conn.execute(
        "select 'sync_states_p' || to_char(date_trunc('hour', (now() + %s::interval) at time zone 'UTC'),"
        " 'YYYYMMDDHH24')",
        (offset,),
    ).fetchone()
    assert row is not None
    return str(row[0])


def hour_start(conn: Conn, offset: str) -> Any:
    row = conn.execute(
        "select date_trunc('hour', (now() + %s::interval) at time zone 'UTC') at time zone 'UTC'",
        (offset,),
    ).fetchone()
    assert row is not None
    return row[0]


def attached(conn: Conn, name: str) -> bool:
    row = conn.execute(
        "select exists (select from pg_inherits where inhparent = 'public.sync_states'::regclass"
        " and inhrelid = to_regclass(%s))",
        (f"public.{name}",),
    ).fetchone()
    return bool(row and row[0])


def maintain(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as c, as_user(c, None, role="service_role") as s:
        row = s.execute("select public.maintain()").fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def rpc(c: Conn, user: str, sql: str, params: Any = ()) -> Any:
    with as_user(c, user) as s:
        row = s.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def room_with_members(conn: Conn, host: str, members: list[str]) -> str:
    room_id: str = rpc(conn, host, CREATE, (host.capitalize(),))["room"]["room_id"]
    for user in members:
        rpc(conn, user, "select public.join_room(%s, null, %s)", (room_id, user.capitalize()))
    return room_id


def go_stale(conn: Conn, user: str) -> None:
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = now() - interval '5 minutes'"
        " where user_id = %s",
        (user,),
    )


def prepare_ddl_work(conn: Conn) -> tuple[str, str]:
    """A partition ahead missing (to create) and an expired one attached (to retire)."""
    conn.execute("select watchium_private.maintain_sync_history()")
    conn.execute(INSERT_AT, (hour_start(conn, "-3 hours"), 1))
    conn.execute("select watchium_private.maintain_sync_history()")  # attaches that old hour
    old = hour_name(conn, "-3 hours")
    assert attached(conn, old)
    conn.execute(
        "update watchium_private.settings set value = '\"1 hour\"' where key = 'sync_history_retention'"
    )
    ahead = hour_name(conn, "5 hours")
    conn.execute(f"drop table public.{ahead}")
    return ahead, old


class Traffic:
    """Joins, leaves, host controls and heartbeats from one connection with lock_timeout = 100ms,
    until stopped; every error is kept."""

    def __init__(self, url: str, room_id: str) -> None:
        self.url, self.room_id = url, room_id
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.calls = 0
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute("set lock_timeout = '100ms'")  # and the direct statement below too
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    rpc(c, "guest", "select public.join_room(%s, null, 'Guest')", (self.room_id,))
                    rpc(c, "host", "select public.seek_to_time(%s, %s::numeric)", (self.room_id, i % 500))
                    c.execute(
                        "update watchium_private.member_presence set last_heartbeat = now() - interval '2 seconds'"
                        " where room_id = %s and user_id = 'guest'",
                        (self.room_id,),
                    )
                    rpc(c, "guest", "select public.record_heartbeat(%s, %s::numeric, false)",
                        (self.room_id, i % 500))
                    rpc(c, "guest", "select public.leave_room(%s)", (self.room_id,))
                    self.calls += 4
                except psycopg.Error as exc:
                    self.errors.append(f"{exc.sqlstate}: {str(exc).splitlines()[0]}")

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.mark.parametrize("holder", ["reader", "writer"])
def test_long_transaction_does_not_stall_rpcs_behind_partition_ddl(watchium_db_url, conn, holder):
    ahead, old = prepare_ddl_work(conn)
    # Every RPC gives up after waiting 100 ms for a lock (the functions' own lock_timeout).
    conn.execute(
        "update watchium_private.settings set value = '\"100ms\"' where key = 'rpc_lock_timeout'"
    )
    # The traffic joins and leaves as fast as it can; this test is about locks, not rate limits.
    conn.execute("update watchium_private.rate_limit_rules set max_requests = 1000000")
    room_id = room_with_members(conn, "host", [])
    with psycopg.connect(watchium_db_url) as long_tx:
        if holder == "reader":  # a report or pg_dump: ACCESS SHARE on every partition
            long_tx.execute("select count(*) from public.sync_states")
        else:  # a writer of the current hour's partition: ROW EXCLUSIVE on the parent
            long_tx.execute(INSERT_AT, (hour_start(conn, "0 hours"), 1))
        with Traffic(watchium_db_url, room_id) as traffic:
            results = []
            for _ in range(5):
                results.append(maintain(watchium_db_url))
                time.sleep(0.05)
            while traffic.calls < 20 and not traffic.errors:
                time.sleep(0.05)
        print(f"\nlong {holder}: rpc calls={traffic.calls} errors={len(traffic.errors)}"
              f" maintain runs={len(results)}"
              f" skipped={Counter(s['step'] for r in results for s in r['skipped'])}")
        assert traffic.errors == [], traffic.errors
        assert traffic.calls >= 20
        skipped = [s for r in results for s in r["skipped"] if s["job"] == "sync_history"]
        # Every run skipped what it could not lock (and then tried no further DDL that run).
        assert all(any(s["reason"] == "lock busy" for s in r["skipped"]) for r in results), results
        # The expired partition could not be detached behind the long transaction.
        assert all(old not in r["sync_history"]["detached"] for r in results)
        assert attached(conn, old)
        health = conn.execute("select public.sync_history_health()").fetchone()[0]
        assert health["expired_attached"] == [old], health
        assert any(old in w for w in health["warnings"]), health
        if holder == "reader":
            # ATTACH needs the (empty) default partition, which the reader holds: skipped too.
            assert {"job": "sync_history", "step": "attach", "table": ahead,
                    "reason": "lock busy"} in skipped
            assert not attached(conn, ahead)
            assert ahead in health["missing_ahead"]
        else:
            # ATTACH takes SHARE UPDATE EXCLUSIVE on the parent: the writer does not stop it;
            # DETACH needs ACCESS EXCLUSIVE on the parent: skipped.
            assert attached(conn, ahead)
            assert {"job": "sync_history", "step": "retire", "table": old,
                    "reason": "lock busy"} in skipped
        long_tx.rollback()
    # Once the long transaction is gone, the next run does what was skipped, and the run after
    # it drops the partition that run detached.
    done = maintain(watchium_db_url)
    assert done["skipped"] == [], done
    assert old in done["sync_history"]["detached"] and attached(conn, ahead)
    assert old in maintain(watchium_db_url)["sync_history"]["dropped"]
    health = conn.execute("select public.sync_history_health()").fetchone()[0]
    assert health["ok"] and health["warnings"] == [] and health["missing_ahead"] == [], health


class LockWatch:
    """Polls pg_locks for lock requests of one backend that are waiting (not granted)."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.stop = threading.Event()
        self.polls = 0
        self.waiting: list[tuple[str, str]] = []
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as c:
            while not self.stop.is_set():
                self.waiting += c.execute(
                    "select mode, relation::regclass::text from pg_locks"
                    " where pid = %s and not granted",
                    (self.pid,),
                ).fetchall()
                self.polls += 1

    def __enter__(self) -> LockWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.mark.parametrize("holder", ["reader", "writer"])
def test_maintain_never_queues_for_a_lock_rpcs_need(watchium_db_url, conn, holder):
    # A lock request that waits lets nobody conflicting pass it: every heartbeat sample or
    # history read arriving meanwhile would queue behind it. So maintain() must find such a lock
    # taken and skip, never wait for it, however long maintenance_lock_timeout is.
    ahead, old = prepare_ddl_work(conn)
    conn.execute(
        "update watchium_private.settings set value = '\"5s\"' where key = 'maintenance_lock_timeout'"
    )
    with psycopg.connect(watchium_db_url) as long_tx:
        if holder == "reader":
            long_tx.execute("select count(*) from public.sync_states")
        else:
            long_tx.execute(INSERT_AT, (hour_start(conn, "0 hours"), 1))
        with (
            psycopg.connect(watchium_db_url, autocommit=True) as m,
            as_user(m, None, role="service_role") as s,
        ):
            with LockWatch(watchium_db_url, m.info.backend_pid) as watch:
                while watch.polls == 0:
                    time.sleep(0.01)
                row = s.execute("select public.maintain()").fetchone()
            assert row is not None
            result: dict[str, Any] = row[0]
        assert watch.waiting == [], watch.waiting
        step = "attach" if holder == "reader" else "retire"
        table = ahead if holder == "reader" else old
        assert {"job": "sync_history", "step": step, "table": table, "reason": "lock busy"} in (
            result["skipped"]
        ), result
        assert attached(conn, old)
        long_tx.rollback()
    done = maintain(watchium_db_url)
    assert done["skipped"] == [], done
    assert old in done["sync_history"]["detached"] and attached(conn, ahead)


def test_lock_at_once_takes_only_lock_statements(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_lock must be a LOCK TABLE"):
        conn.execute("select watchium_private.lock_at_once('drop table public.sync_states', '1ms')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_lock must be a LOCK TABLE"):
        conn.execute(
            "select watchium_private.lock_at_once("
            "'lock table public.sync_states in access exclusive mode', '1ms')"
        )
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_within must be"):
        conn.execute(
            "select watchium_private.lock_at_once("
            "'lock table public.sync_states in access exclusive mode nowait', '-1s')"
        )
    assert conn.execute("select to_regclass('public.sync_states') is not null").fetchone() == (True,)


def test_locked_presence_row_of_a_stale_member_is_skipped_not_waited_for(watchium_db_url, conn):
    busy_room = room_with_members(conn, "alice", ["bob"])
    other_room = room_with_members(conn, "carol", ["dave"])
    go_stale(conn, "bob")
    go_stale(conn, "dave")
    with psycopg.connect(watchium_db_url) as holder:
        holder.execute(
            "select 1 from watchium_private.member_presence where user_id = 'bob' for update"
        )
        result = maintain(watchium_db_url)  # neither fails nor waits on bob's row
        assert result["rooms"]["stale_members_removed"] == 1
        assert result["rooms"]["members_skipped_busy"] == 1
        assert any(s["job"] == "rooms" and "locked by callers" in s["reason"]
                   for s in result["skipped"]), result
        holder.rollback()
    members = conn.execute("select room_id, user_id from public.room_members").fetchall()
    assert (other_room, "dave") not in members and (busy_room, "bob") in members
    assert maintain(watchium_db_url)["rooms"]["stale_members_removed"] == 1
    assert (busy_room, "bob") not in conn.execute(
        "select room_id, user_id from public.room_members").fetchall()


def test_member_whose_heartbeat_commits_during_maintenance_is_not_removed(watchium_db_url, conn):
    conn.execute("select watchium_private.maintain_sync_history()")  # no partition work left
    room_id = room_with_members(conn, "alice", ["bob"])
    go_stale(conn, "bob")
    outcome: list[Any] = []
    with psycopg.connect(watchium_db_url) as hb:
        # bob's heartbeat is in flight: its presence update is written, not yet committed.
        hb.execute("select 1")  # open the transaction: the call below runs inside it
        rpc(hb, "bob", "select public.record_heartbeat(%s, 0, false)", (room_id,))
        assert hb.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS

        def run() -> None:
            try:
                outcome.append(maintain(watchium_db_url))
            except psycopg.Error as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        # Commit the heartbeat once maintenance has finished or is waiting for bob's row.
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:
            waiting = conn.execute(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                " and datname = current_database()"
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.01)
        hb.commit()
        thread.join(30)
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert (room_id, "bob") in conn.execute(
        "select room_id, user_id from public.room_members").fetchall()
    # And it stays: its heartbeat is fresh.
    assert maintain(watchium_db_url)["rooms"]["stale_members_removed"] == 0


def test_stale_host_whose_successor_is_busy_waits_for_the_next_run(watchium_db_url, conn):
    room_id = room_with_members(conn, "alice", ["bob", "carol"])
    go_stale(conn, "alice")
    with psycopg.connect(watchium_db_url) as holder:
        # bob, the longest-present member, has his member row locked (an is_synced flip).
        holder.execute(
            "select 1 from public.room_members where user_id = 'bob' for no key update"
        )
        result = maintain(watchium_db_url)
        assert result["rooms"]["stale_members_removed"] == 0
        holder.rollback()
    assert maintain(watchium_db_url)["rooms"]["hosts_transferred"] == 1
    assert conn.execute(
        "select host_user_id from public.rooms where room_id = %s", (room_id,)
    ).fetchone() == ("bob",)


def test_default_partition_is_drained_in_bounded_batches(conn):
    conn.execute("update watchium_private.settings set value = '100' where key = 'sync_history_drain_batch'")
    conn.execute(INSERT_AT, (hour_start(conn, "-2 hours"), 250))
    name = hour_name(conn, "-2 hours")
    runs = []
    for _ in range(3):
        runs.append(conn.execute("select watchium_private.maintain_sync_history()").fetchone()[0])
    assert [r["moved_from_default"] for r in runs] == [100, 100, 50]
    assert [r["left_in_default"] for r in runs] == [101, 50, 0]  # counted up to batch + 1
    assert not runs[0]["skipped"] or runs[0]["skipped"][0]["table"] == name
    assert name in runs[2]["attached"] and attached(conn, name)
    assert conn.execute(f"select count(*) from public.{name}").fetchone() == (250,)


def test_detached_partition_is_attached_again(conn):
    conn.execute("select watchium_private.maintain_sync_history()")
    name = hour_name(conn, "2 hours")
    conn.execute(f"alter table public.sync_states detach partition public.{name}")
    conn.execute(INSERT_AT, (hour_start(conn, "2 hours"), 3))  # lands in the default partition
    # And one created by hand, without the bound constraint.
    other = hour_name(conn, "3 hours")
    conn.execute(f"alter table public.sync_states detach partition public.{other}")
    conn.execute(f"drop table public.{other}")
    conn.execute(f"create table public.{other} (like public.sync_states including all)")
    health = conn.execute("select public.sync_history_health()").fetchone()[0]
    assert set(health["detached"]) == {name, other} and health["default_rows"] == 3
    result = conn.execute("select watchium_private.maintain_sync_history()").fetchone()[0]
    assert sorted(result["attached"]) == sorted([name, other]), result
    assert attached(conn, name) and attached(conn, other)
    assert conn.execute(f"select count(*) from public.{name}").fetchone() == (3,)
    assert conn.execute("select count(*) from public.sync_states_default").fetchone() == (0,)


def test_doctor_reports_partition_work_left_by_skipped_runs(watchium_db_url, conn):
    from watchium_db import health

    conn.execute("select watchium_private.maintain_sync_history()")
    assert health.check(watchium_db_url).details["sync_history"]["missing_ahead"] == []
    # This hour's partition missing (history goes to the default partition): a problem.
    current = hour_name(conn, "0 hours")
    conn.execute(f"alter table public.sync_states detach partition public.{current}")
    report = health.check(watchium_db_url)
    assert not report.ok
    assert any("partition of this hour or the next is missing" in p for p in report.problems)
    assert any(current in w for w in report.warnings)  # and it is a detached table of ours
    assert "sync history" in health.format_report(report)


def test_a_lock_on_an_empty_rooms_comment_skips_that_room_only(watchium_db_url, conn):
    empty_room = room_with_members(conn, "alice", [])
    rpc(conn, "alice", "select public.post_comment('a1', 1, 'bye', p_room_id => %s)", (empty_room,))
    rpc(conn, "alice", "select public.leave_room(%s)", (empty_room,))
    conn.execute("update public.rooms set last_activity = now() - interval '2 hours'"
                 " where room_id = %s", (empty_room,))
    other_room = room_with_members(conn, "carol", ["dave"])
    go_stale(conn, "dave")
    with psycopg.connect(watchium_db_url) as holder:
        # The author is editing the comment: its row is locked, and the room's deletion
        # would delete it.
        holder.execute("select 1 from public.comments where message = 'bye' for update")
        result = maintain(watchium_db_url)
        assert result["rooms"]["empty_rooms_deleted"] == 0
        assert result["rooms"]["rooms_skipped_busy"] == 1
        # The stale member of another room was still removed.
        assert result["rooms"]["stale_members_removed"] == 1
        holder.rollback()
    assert (other_room, "dave") not in conn.execute(
        "select room_id, user_id from public.room_members").fetchall()
    assert maintain(watchium_db_url)["rooms"]["empty_rooms_deleted"] == 1
