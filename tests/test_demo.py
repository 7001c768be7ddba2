"""`watchium-db demo --fast --json` end to end, as a subprocess against a test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psycopg


def test_demo_plays_a_watch_party_end_to_end(
    watchium_db_url: str, watchium_conn: psycopg.Connection[Any]
) -> None:
    env = {**os.environ, "WATCHIUM_DATABASE_URL": watchium_db_url}
    done = subprocess.run(
        [sys.executable, "-m", "watchium_db.cli", "demo", "--fast", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)

    assert summary["host_changed"] and summary["host_after"] != summary["host_before"]
    assert summary["everyone_in_sync"] and len(summary["members"]) == 3
    assert all(
        m["sync_level"] in ("perfect", "good", "minor_drift") for m in summary["members"].values()
    )
    assert summary["stale_member_removed"]
    # A member's lag is corrected with its RTT; a wrong episode is reported as such.
    assert summary["rtt_member"]["rtt_ms"] == 240
    assert summary["wrong_episode_reports"] >= 1
    assert summary["queue_auto_advanced"]
    kinds = summary["event_types"]
    assert summary["events_received"] == sum(kinds.values()) > 0
    # play, wait, resume, seek, speed, the co-host's pause, and the ready check's start
    assert kinds["playback"] == 7
    assert summary["co_host_paused"] and kinds["member_role_changed"] == 1
    # The host left: the co-host, not the longest-present member, took over.
    assert summary["host_after"] == summary["co_host"]
    assert summary["ban_refused_rejoin"] and summary["ban_lapsed_rejoined"]
    assert summary["join_approval"] == {
        "join_refused": True, "requested": True, "listed": True, "joined": True}  # fmt: skip
    # Mika blocks; Mika is ready: resumed; the host cancels the ready check: cancelled
    assert kinds["sync_wait"] == 3
    assert summary["group_wait"] == {"waited": True, "resumed": True, "scheduled_start": True}
    # The host's ready check: started (the room waits for it), Yuki answered, the host cancelled
    # it and the room stayed paused; started, updated and cancelled reached the listener.
    assert summary["ready_check"] == {
        "started": True, "answered": True, "cancelled": True, "stayed_paused": True}  # fmt: skip
    assert kinds["ready_check"] == 3, kinds
    assert kinds["chat_message"] == 1 and kinds["host_changed"] == 1
    assert kinds["member_left"] == 2  # the stale member and the host

    # The database agrees: the host moved on, the stale member and the old host are gone.
    host = watchium_conn.execute(
        "select host_user_id from public.rooms where room_id = %s", (summary["private_room"],)
    ).fetchone()
    assert host == (summary["host_after"],)
    members = {
        r[0]
        for r in watchium_conn.execute(
            "select user_id from public.room_members where room_id = %s",
            (summary["private_room"],),
        )
    }
    assert members == {m["user_id"] for m in summary["members"].values()}
    assert summary["stale_member"] not in members and summary["host_before"] not in members
