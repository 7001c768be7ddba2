"""Reliability: backends killed (pg_terminate_backend) at random points during RPCs and
maintenance. Workers reconnect and carry on; afterwards every invariant holds, nothing is
half-written (member without presence, room with members but no host or two, private room
without its secret, a control's sync records without its playback event), and membership is
what the callers were told, except for (room, user) pairs whose call was killed in flight
(nobody knows whether it committed)."""

from __future__ import annotations

import pytest
from reliability_helpers import (
    Ledger,
    Workload,
    check_state,
    make_rooms,
    relax_limits,
    rpc,
    verify_membership,
)


def finish(conn, ledger, load, label):
    print(f"\n{label}: {ledger.summary()} kills_by={dict(load.kills_by_name)}"
          f" maintain_runs={load.maintain_runs}")
    assert ledger.failures == [], (ledger.failures[:5], ledger.summary())
    assert not {"40P01", "XX000"} & set(ledger.errors), ledger.summary()
    # After the storm, maintenance completes and everything still holds.
    rpc(conn, None, "select public.maintain()", role="service_role")
    assert check_state(conn) == [], ledger.summary()
    verify_membership(conn, ledger)


def test_backends_killed_during_rpcs_and_maintenance(watchium_db_url, conn):
    relax_limits(conn)
    ledger = Ledger()
    rooms = make_rooms(conn, 20, ledger)
    load = Workload(watchium_db_url, rooms, ledger, workers=8, ops_per_worker=150,
                    kill_interval=0.03, seed=11, maintain_pause=0.05)
    load.run(timeout=90)
    finish(conn, ledger, load, "kills during RPCs")
    assert ledger.kills >= 20, ledger.summary()
    assert ledger.errors["57P01"] >= 10, ledger.summary()  # the callers saw their kills
    assert load.done == 8


def test_maintenance_killed_while_cleaning_up_stale_members(watchium_db_url, conn):
    """Maintenance removing many stale members (with host transfers) is killed repeatedly
    mid-run while clients keep joining, leaving and controlling playback."""
    relax_limits(conn, stale_after="1 second")
    ledger = Ledger()
    rooms = make_rooms(conn, 20, ledger)
    # 20 members per room, all stale from the start: every maintenance run has work to do.
    for i, room_id in enumerate(rooms):
        key = conn.execute(
            "select access_key from watchium_private.room_secrets where room_id = %s", (room_id,)
        ).fetchone()
        for j in range(20):
            user = f"m{i:02d}x{j:02d}"
            result = rpc(conn, user, "select public.join_room(%s, %s, %s)",
                         (room_id, key[0] if key else None, user))
            assert result["status"] == "joined"
            ledger.joined[(room_id, user)] += 1
    conn.execute("update watchium_private.member_presence set last_heartbeat = now() - interval '1 minute'")
    load = Workload(watchium_db_url, rooms, ledger, workers=6, ops_per_worker=120,
                    kill_interval=0.04, kill_names="maint", seed=12, maintain_pause=0.0,
                    operations=("join", "leave", "play_pause", "seek", "heartbeat", "transfer"))
    load.run(timeout=90)
    finish(conn, ledger, load, "kills during maintenance")
    assert load.kills_by_name["maint"] >= 2, ledger.summary()
    # The clean-up finished in the end: nobody stale is left.
    assert conn.execute(
        "select count(*) from watchium_private.member_presence"
        " where last_heartbeat < now() - interval '1 minute'"
    ).fetchone() == (0,)


@pytest.mark.slow
def test_backends_killed_during_rpcs_and_maintenance_long(watchium_db_url, conn):
    relax_limits(conn)
    ledger = Ledger()
    rooms = make_rooms(conn, 20, ledger)
    load = Workload(watchium_db_url, rooms, ledger, workers=10, ops_per_worker=800,
                    kill_interval=0.02, seed=13, maintain_pause=0.05)
    load.run(timeout=110)
    finish(conn, ledger, load, "kills during RPCs (long)")
    assert ledger.kills >= 200, ledger.summary()
    assert load.done == 10
