"""The lead of a scheduled start covers the room's network (docs/sync.md, "Scheduled starts"):
greatest(the room's minimum lead, 2 x the 90th percentile of the live members' smoothed RTT capped
by sync_max_rtt_start_lead, an episode's countdown)."""

from __future__ import annotations

from typing import Any

import psycopg

from watchium_db.testing import as_user, make_room

MEMBERS = [f"m{i}" for i in range(1, 12)]  # with the host: 12 members


def rpc(conn: psycopg.Connection[Any], user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    return row[0] if row else None


def set_rtt(conn: psycopg.Connection[Any], room_id: str, rtts: dict[str, float | None]) -> None:
    """Give members a smoothed RTT (ms; None: never reported) and a fresh heartbeat."""
    for user, rtt in rtts.items():
        conn.execute(
            "update watchium_private.member_presence set rtt_ms = %s, last_heartbeat = now()"
            " where room_id = %s and user_id = %s",
            (rtt, room_id, user),
        )


def lead(conn: psycopg.Connection[Any], room_id: str, episode_start: bool = False) -> float:
    """Seconds between a start decided now and the instant it takes effect."""
    row = conn.execute(
        "select extract(epoch from watchium_private.scheduled_start_at(r, t.at, %s) - t.at)"
        " from public.rooms as r, (select clock_timestamp() as at) as t where r.room_id = %s",
        (episode_start, room_id),
    ).fetchone()
    assert row is not None
    return float(row[0])


def no_min_lead(conn: psycopg.Connection[Any], room_id: str) -> None:
    conn.execute("update public.rooms set sync_min_start_lead = 0 where room_id = %s", (room_id,))


def test_the_90th_percentile_decides_not_the_worst_member(conn):
    room = make_room(conn, host="hana", members=MEMBERS)
    rid = room.room_id
    no_min_lead(conn, rid)
    # Ten members with an RTT: nine at 50 ms, one at 900 ms. p90 is 50 ms: lead 100 ms.
    rtts: dict[str, float | None] = {u: 50 for u in ["hana", *MEMBERS[:8]]}
    rtts[MEMBERS[8]] = 900
    # Two never reported one: not counted (with them the worst would be among 12).
    rtts[MEMBERS[9]] = None
    rtts[MEMBERS[10]] = None
    set_rtt(conn, rid, rtts)
    assert lead(conn, rid) == 0.1
    # A second slow member (400 ms) makes the 90th percentile 400 ms: lead 800 ms.
    set_rtt(conn, rid, {MEMBERS[7]: 400})
    assert lead(conn, rid) == 0.8
    # Below ten members the 90th percentile is the worst: drop eight fast ones.
    set_rtt(conn, rid, {u: None for u in ["hana", *MEMBERS[:7]]})
    assert lead(conn, rid) == 1.8


def test_stale_presences_are_ignored(conn):
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rid = room.room_id
    no_min_lead(conn, rid)
    set_rtt(conn, rid, {"hana": 100, "mio": 200, "ren": 2000})
    assert lead(conn, rid) == 4.0
    # ren stopped reporting longer ago than member_stale_after (30 s): ignored.
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = now() - interval '31 seconds'"
        " where room_id = %s and user_id = 'ren'",
        (rid,),
    )
    assert lead(conn, rid) == 0.4
    # Nobody live with an RTT: no network lead.
    set_rtt(conn, rid, {"hana": None, "mio": None})
    assert lead(conn, rid) == 0


def test_the_round_trip_lead_is_capped(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    set_rtt(conn, rid, {"hana": 4000, "mio": 4000})
    assert lead(conn, rid) == 5  # 8 s capped by sync_max_rtt_start_lead (5 s)
    conn.execute(
        "update watchium_private.settings set value = '2' where key = 'sync_max_rtt_start_lead'"
    )
    assert lead(conn, rid) == 2
    # The cap bounds the network part only: a larger minimum lead or countdown still applies.
    conn.execute("update public.rooms set sync_min_start_lead = 3 where room_id = %s", (rid,))
    assert lead(conn, rid) == 3


def test_the_minimum_lead_applies_when_round_trips_are_short(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    set_rtt(conn, rid, {"hana": 20, "mio": 120})
    assert lead(conn, rid) == 0.5  # 2 x 120 ms < the default minimum lead of 500 ms
    conn.execute("update public.rooms set sync_min_start_lead = 0.1 where room_id = %s", (rid,))
    assert lead(conn, rid) == 0.24  # below the round-trip lead, the minimum no longer decides


def test_an_episode_countdown_longer_than_the_round_trip_lead_wins(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    conn.execute("update public.rooms set sync_episode_countdown = 3 where room_id = %s", (rid,))
    set_rtt(conn, rid, {"hana": 100, "mio": 900})
    assert lead(conn, rid, episode_start=True) == 3
    assert lead(conn, rid, episode_start=False) == 1.8
    conn.execute("update public.rooms set sync_episode_countdown = 1 where room_id = %s", (rid,))
    assert lead(conn, rid, episode_start=True) == 1.8


def test_a_host_play_waits_for_the_slow_network(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rid = room.room_id
    set_rtt(conn, rid, {"hana": 1000, "mio": 1000})
    played = rpc(conn, "hana", "select public.change_playback_state(%s, true, 30)", rid)
    row = conn.execute(
        "select extract(epoch from playback_updated_at - clock_timestamp())"
        " from public.rooms where room_id = %s",
        (rid,),
    ).fetchone()
    assert row is not None and 1 < float(row[0]) <= 2  # 2 x 1000 ms, not the 500 ms minimum
    assert played["is_playing"] is True


def test_the_project_settings_decide_when_the_room_sets_nothing(conn):
    """The settings member_stale_after, sync_min_start_lead and sync_episode_countdown apply to a
    room with no options of its own; the percentile is an RTT a member has, to the 0.1 ms."""
    room = make_room(conn, host="hana", members=MEMBERS[:8])
    rid = room.room_id
    set_rtt(conn, rid, {u: 30 + i / 10 for i, u in enumerate(["hana", *MEMBERS[:8]])})
    conn.execute(
        "update watchium_private.settings set value = '0' where key = 'sync_min_start_lead'"
    )
    # Nine RTTs, 30.0 to 30.8 ms: below ten members the 90th percentile is the worst.
    assert lead(conn, rid) == 0.0616
    conn.execute(
        "update watchium_private.settings set value = '1.25' where key = 'sync_min_start_lead'"
    )
    assert lead(conn, rid) == 1.25
    conn.execute(
        "update watchium_private.settings set value = '4' where key = 'sync_episode_countdown'"
    )
    assert lead(conn, rid, episode_start=True) == 4
    assert lead(conn, rid, episode_start=False) == 1.25
    # A shorter member_stale_after: members last heard from 15 s ago no longer count.
    conn.execute(
        "update watchium_private.settings set value = '0' where key = 'sync_min_start_lead'"
    )
    conn.execute(
        "update watchium_private.member_presence set rtt_ms = 900,"
        " last_heartbeat = now() - interval '15 seconds' where room_id = %s and user_id = %s",
        (rid, MEMBERS[7]),
    )
    assert lead(conn, rid) == 1.8  # live at the default 30 s: 900 ms is the worst
    conn.execute(
        "update watchium_private.settings set value = '\"10 seconds\"'"
        " where key = 'member_stale_after'"
    )
    assert lead(conn, rid) == 0.0614  # eight live RTTs, 30.0 to 30.7 ms
