"""Reliability: every RPC mixed, from 8+ connections, with maintenance running alongside.

Invariants checked every few steps by the workers and at the end (tests/reliability_helpers.py):
one host per non-empty room agreeing with rooms.host_*, members and presence rows in pairs,
private rooms with their secret, no NaN or out-of-range time anywhere, no control's sync records
without its playback event; membership equal to what successful calls said; no deadlock (40P01)
or internal error (XX000) ever reaches a caller.
"""

from __future__ import annotations

import pytest
from reliability_helpers import (
    BANNED_MEMBERS,
    GOVERNANCE_OPERATIONS,
    QUEUE_VIOLATIONS,
    STATE_VIOLATIONS,
    Ledger,
    Workload,
    check_state,
    make_rooms,
    relax_limits,
    rpc,
    verify_membership,
)

KINDS = (
    "join",
    "leave",
    "kick",
    "transfer",
    "play_pause",
    "seek",
    "speed",
    "heartbeat",
    "comment",
    "broadcast",
    "sync_state",
    "privacy",
    *dict.fromkeys(GOVERNANCE_OPERATIONS),
)
# The default mix plus governance: role changes, co-host controls, bans and kicks with a ban,
# queue edits.
OPERATIONS = (
    *("join", "join", "join", "join", "leave", "kick", "transfer", "play_pause", "seek"),
    *("speed", "heartbeat", "heartbeat", "heartbeat", "comment", "broadcast", "sync_state"),
    *("privacy", *GOVERNANCE_OPERATIONS),
)
CHECK_SQL = STATE_VIOLATIONS + "union all" + BANNED_MEMBERS + "union all" + QUEUE_VIOLATIONS


def run_mixed(url, conn, *, workers, ops, seed, timeout):
    relax_limits(conn)
    ledger = Ledger()
    rooms = make_rooms(conn, 20, ledger)
    load = Workload(
        url, rooms, ledger, workers=workers, ops_per_worker=ops, seed=seed,
        operations=OPERATIONS, check_sql=CHECK_SQL,
    )  # fmt: skip
    elapsed = load.run(timeout=timeout)
    print(f"\nmixed workload: {ledger.summary()} maintain_runs={load.maintain_runs} {elapsed:.1f}s")
    assert ledger.failures == [], (ledger.failures[:5], ledger.summary())
    assert load.done == workers, ledger.summary()
    assert check_state(conn, CHECK_SQL) == []
    verify_membership(conn, ledger)
    # Nothing outside the API's SQLSTATEs, and above all no deadlock or internal error.
    assert not {"40P01", "XX000"} & set(ledger.errors), ledger.summary()
    # The workload really ran every kind of operation, and maintenance ran alongside.
    missing = [k for k in KINDS if ledger.ops[k] == 0]
    assert missing == [], (missing, ledger.summary())
    assert load.maintain_runs > 0
    return ledger


def test_mixed_workload_keeps_invariants(watchium_db_url, conn):
    ledger = run_mixed(watchium_db_url, conn, workers=8, ops=180, seed=1, timeout=90)
    assert sum(ledger.ops.values()) - ledger.ops["skip"] > 800, ledger.summary()


@pytest.mark.slow
def test_mixed_workload_keeps_invariants_long(watchium_db_url, conn):
    ledger = run_mixed(watchium_db_url, conn, workers=10, ops=1000, seed=2, timeout=110)
    assert sum(ledger.ops.values()) - ledger.ops["skip"] > 6000, ledger.summary()
    # Members went stale and maintenance removed them while everything else ran.
    stale = conn.execute(
        "select count(*) from watchium_private.room_events"
        " where event = 'member_left' and payload->>'reason' = 'stale'"
    ).fetchone()
    assert stale is not None and stale[0] > 0, ledger.summary()


def test_invariant_checks_catch_half_written_states(conn):
    """The checks the workloads rely on do fail on the states they are meant to catch."""
    relax_limits(conn)
    ledger = Ledger()
    private, public = make_rooms(conn, 2, ledger, private_every=2)
    assert check_state(conn) == []
    conn.execute("set session_replication_role = replica")  # no triggers: write half-states
    conn.execute("delete from watchium_private.member_presence where room_id = %s", (public,))
    conn.execute("delete from watchium_private.room_secrets where room_id = %s", (private,))
    # role follows is_host (room_members_role_host_check holds without triggers too).
    conn.execute(
        "update public.room_members set is_host = false, role = 'member' where room_id = %s",
        (private,),
    )
    conn.execute(
        "insert into public.sync_states (room_id, user_id, host_time, member_time,"
        " time_difference, is_synced, sync_event_type) values (%s, 'x', 1, 1, 0, true, 'seek')",
        (public,),
    )
    kinds = {row[0] for row in check_state(conn)}
    assert kinds == {
        "host",
        "member_without_presence",
        "secret_mismatch",
        "control_sync_without_event",
    }, kinds


def test_queue_check_catches_gaps_and_a_wrong_current_item(conn):
    relax_limits(conn)
    ledger = Ledger()
    (room,) = make_rooms(conn, 1, ledger)
    host = conn.execute(
        "select user_id from public.room_members where room_id = %s and is_host", (room,)
    ).fetchone()[0]
    for episode in (1, 2, 3):
        rpc(conn, host, "select public.add_to_queue(%s, 'a', 'A', %s, 'https://example.com/v', 60)",
            (room, episode))  # fmt: skip
    assert check_state(conn, QUEUE_VIOLATIONS) == []
    conn.execute("set session_replication_role = replica")  # no triggers: write half-states
    conn.execute("update public.room_queue set position = 5 where room_id = %s and position = 3",
                 (room,))  # fmt: skip
    conn.execute("update public.rooms set queue_item_id = 999999, queue_advance_after = 62"
                 " where room_id = %s", (room,))  # fmt: skip
    kinds = {row[0] for row in check_state(conn, QUEUE_VIOLATIONS)}
    assert kinds == {"queue_positions", "queue_current"}, kinds
