"""Scheduled starts and the waiting state in the host controls and heartbeats (docs/sync.md,
"Waiting"): a start takes effect at a future instant stored as the playback reference; host
controls end or keep a wait."""

from __future__ import annotations

from typing import Any

import psycopg

from watchium_db.testing import as_user, make_room


def rpc(conn: psycopg.Connection[Any], user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    return row[0] if row else None


def reference(conn: psycopg.Connection[Any], room_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select is_playing, current_playback_time, playback_updated_at > clock_timestamp(),"
        " waiting_reason from public.rooms where room_id = %s",
        (room_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def sync_waits(conn: psycopg.Connection[Any], room_id: str) -> list[dict[str, Any]]:
    return [
        p
        for (p,) in conn.execute(
            "select payload from watchium_private.room_events"
            " where room_id = %s and event = 'sync_wait' order by event_id",
            (room_id,),
        )
    ]


def test_play_and_seek_while_playing_are_scheduled_starts(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    played = rpc(conn, "hana", "select public.change_playback_state(%s, true, 30)", rid)
    assert reference(conn, rid)[:3] == (True, 30, True)
    # Before the start instant the expected position is the start position.
    before, lead = conn.execute(
        "select watchium_private.room_expected_position(r, clock_timestamp()),"
        " r.playback_updated_at - (%s::jsonb ->> 'playback_updated_at')::timestamptz"
        " from public.rooms as r where r.room_id = %s",
        (psycopg.types.json.Jsonb(played), rid),
    ).fetchone()
    assert before == 30 and lead.total_seconds() == 0
    rpc(conn, "hana", "select public.seek_to_time(%s, 300)", rid)
    assert reference(conn, rid)[:3] == (True, 300, True)
    # A speed change keeps playing from now: no start.
    rpc(conn, "hana", "select public.set_playback_speed(%s, 1.5)", rid)
    assert reference(conn, rid)[2] is False
    # Pausing and seeking while paused start nothing.
    rpc(conn, "hana", "select public.change_playback_state(%s, false)", rid)
    rpc(conn, "hana", "select public.seek_to_time(%s, 10)", rid)
    assert reference(conn, rid)[:3] == (False, 10, False)


def test_an_episode_start_counts_down(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    conn.execute("update public.rooms set sync_episode_countdown = 3 where room_id = %s", (rid,))
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 0)", rid)
    lead = conn.execute(
        "select playback_updated_at - clock_timestamp() from public.rooms where room_id = %s",
        (rid,),
    ).fetchone()
    assert lead is not None and lead[0].total_seconds() > 2  # 3 s countdown, not 0.5 s
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 5)", rid)
    lead = conn.execute(
        "select playback_updated_at - clock_timestamp() from public.rooms where room_id = %s",
        (rid,),
    ).fetchone()
    assert lead is not None and lead[0].total_seconds() < 1  # not an episode start


def test_host_play_ends_a_wait_pause_cancels_it_seek_keeps_it(conn):
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rid = room.room_id
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 50)", rid)
    rpc(conn, "mio", "select public.report_playback_status(%s, 'ready', 50)", rid)
    rpc(conn, "mio", "select public.report_playback_status(%s, 'buffering', 50)", rid)
    assert reference(conn, rid)[3] == "buffering"
    rpc(conn, "hana", "select public.seek_to_time(%s, 80)", rid)
    assert reference(conn, rid)[:2] == (False, 80) and reference(conn, rid)[3] == "buffering"
    rpc(conn, "hana", "select public.change_playback_state(%s, true)", rid)
    assert reference(conn, rid) == (True, 80, True, None)
    last = sync_waits(conn, rid)[-1]
    assert (last["state"], last["cause"], last["skipped"]) == ("resumed", "host", ["mio"])
    # Pause while waiting: the wait is cancelled, the room stays paused.
    rpc(conn, "mio", "select public.report_playback_status(%s, 'ready', 80)", rid)
    rpc(conn, "ren", "select public.report_playback_status(%s, 'ready', 80)", rid)
    rpc(conn, "ren", "select public.report_playback_status(%s, 'buffering', 80)", rid)
    assert reference(conn, rid)[3] == "buffering"
    rpc(conn, "hana", "select public.change_playback_state(%s, false)", rid)
    assert reference(conn, rid)[0] is False and reference(conn, rid)[3] is None
    last = sync_waits(conn, rid)[-1]
    assert (last["state"], last["cause"], last["skipped"]) == ("cancelled", "host", ["ren"])
    # A ready report afterwards does not start the paused room.
    rpc(conn, "ren", "select public.report_playback_status(%s, 'ready', 80)", rid)
    assert reference(conn, rid)[0] is False
