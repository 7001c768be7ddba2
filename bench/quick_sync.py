"""Quick benchmark of the playback sync hot path against the seed's own SQL, in the same run.

    python -m bench.quick_sync          (or: python bench/quick_sync.py)

On a fresh database (a throw-away local server, or WATCHIUM_TEST_DATABASE_URL) migrated to head,
with the seed's reference SQL written from seed/realtime-architecture.md into a separate schema
``seed_ref`` that only this benchmark creates:

1. Host control in a 1,000-member room: ours is ``public.change_playback_state`` called as the
   host (room lock, host check, room update, set-based bulk sync of 1,000 history rows, one
   event); the seed's is ``update rooms`` plus its PL/pgSQL-loop ``bulk_sync_update``. Then
   both ``bulk_sync_update`` alone, interleaved with the floor: the same 1,000 rows inserted by
   one INSERT ... SELECT into an unlogged table without index (issue 8: <= 3x the floor).
2. ``check_rate_limit`` with 10k and with 5M history rows: the seed counts ``sync_states`` rows;
   ours upserts one counter row.

Times are client-side wall times of whole transactions (ours includes setting the JWT claims and
role, as PostgREST does); medians over interleaved rounds. Results go to stdout and
bench/results/quick_sync.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from watchium_db import testing

RESULTS = Path(__file__).resolve().parent / "results" / "quick_sync.json"
ROOM = "benchroom1"
MEMBERS = 1000
CONTROL_ROUNDS = 31
RATE_CALLS = 300
RATE_ROUNDS = 7
HISTORY_SIZES = (10_000, 5_000_000)
HISTORY_USERS = 100
HISTORY_SPAN_SECONDS = 600

# The seed's tables, shaped as in the seed document (VARCHAR/DECIMAL, a foreign key from
# sync_states to rooms, the seed's presence index). sync_states gets an index on
# (user_id, created_at): without it the seed's count is a sequential scan.
SEED_SCHEMA = """
drop schema if exists seed_ref cascade;
create schema seed_ref;
create table seed_ref.rooms (
  room_id varchar(10) primary key,
  current_playback_time decimal(10,2) not null default 0,
  is_playing boolean not null default false,
  updated_at timestamptz not null default now()
);
create table seed_ref.room_members (
  room_id varchar(10) not null references seed_ref.rooms (room_id) on delete cascade,
  user_id varchar(100) not null,
  is_synced boolean not null default true,
  current_playback_time decimal(10,2) not null default 0,
  last_heartbeat timestamptz not null default now(),
  primary key (room_id, user_id)
);
create index idx_room_members_presence
  on seed_ref.room_members (room_id, last_heartbeat desc, is_synced);
create table seed_ref.sync_states (
  id bigserial primary key,
  room_id varchar(10) not null references seed_ref.rooms (room_id) on delete cascade,
  user_id varchar(100) not null,
  host_time decimal(10,2) not null,
  member_time decimal(10,2) not null,
  time_difference decimal(10,2) not null,
  is_synced boolean not null,
  sync_event_type varchar(50) not null,
  created_at timestamptz not null default now()
);
create index idx_sync_states_user_created on seed_ref.sync_states (user_id, created_at desc);

-- The seed's bulk_sync_update, verbatim but for the schema.
create function seed_ref.bulk_sync_update(
    p_room_id varchar(10),
    p_host_time decimal(10,2),
    p_sync_event_type varchar(50)
)
returns void as $$
declare
    member_record record;
begin
    for member_record in
        select user_id, current_playback_time
        from seed_ref.room_members
        where room_id = p_room_id
    loop
        insert into seed_ref.sync_states (
            room_id, user_id, host_time, member_time,
            time_difference, is_synced, sync_event_type
        ) values (
            p_room_id,
            member_record.user_id,
            p_host_time,
            member_record.current_playback_time,
            abs(p_host_time - member_record.current_playback_time),
            abs(p_host_time - member_record.current_playback_time) <= 2,
            p_sync_event_type
        );
    end loop;
end;
$$ language plpgsql;

-- The seed's check_rate_limit, verbatim but for the schema.
create function seed_ref.check_rate_limit(
    p_user_id varchar(100),
    p_action varchar(50),
    p_window_minutes integer default 1,
    p_max_requests integer default 60
)
returns boolean as $$
declare
    request_count integer;
begin
    select count(*) into request_count
    from seed_ref.sync_states
    where user_id = p_user_id
        and sync_event_type = p_action
        and created_at > now() - interval '1 minute' * p_window_minutes;
    return request_count < p_max_requests;
end;
$$ language plpgsql security definer;
"""


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def setup_rooms(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SEED_SCHEMA)
    # Ours: a 1,000-member room; members paused at 100 s, as reported by their last heartbeat.
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number,"
        " video_url, host_user_id, host_username, current_playback_time)"
        " values (%s, 'Bench', 'a1', 'Anime', 1, 'https://example.com/v', 'u0', 'U0', 100)",
        (ROOM,),
    )
    conn.execute(
        "insert into public.room_members (room_id, user_id, username, is_host, current_playback_time)"
        " select %s, 'u' || i, 'U' || i, i = 0, 100 from generate_series(0, %s - 1) as i",
        (ROOM, MEMBERS),
    )
    conn.execute(
        "update watchium_private.member_presence set reported_time = 100,"
        " last_heartbeat = now() - interval '1 second' where room_id = %s",
        (ROOM,),
    )
    conn.execute(
        "update watchium_private.rate_limit_rules set max_requests = 1000000"
        " where action = 'sync_control'"
    )
    # As in production: history lands in hourly partitions made by maintenance, and starts
    # empty (the join trigger recorded one 'join' row per member).
    conn.execute("select watchium_private.maintain_sync_history()")
    conn.execute("truncate public.sync_states")
    # The seed's room of the same size.
    conn.execute(
        "insert into seed_ref.rooms (room_id, current_playback_time) values (%s, 100)", (ROOM,)
    )
    conn.execute(
        "insert into seed_ref.room_members (room_id, user_id, current_playback_time)"
        " select %s, 'u' || i, 100 from generate_series(0, %s - 1) as i",
        (ROOM, MEMBERS),
    )
    conn.execute("vacuum analyze")


def bench_host_control(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    ours: list[float] = []
    seed: list[float] = []
    claims = json.dumps({"sub": "u0", "role": "authenticated"})

    def ours_round(playing: bool) -> None:
        with conn.transaction():
            conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
            conn.execute("set local role authenticated")
            conn.execute("select public.change_playback_state(%s, %s, 100)", (ROOM, playing))

    def seed_round(playing: bool) -> None:
        with conn.transaction():
            conn.execute(
                "update seed_ref.rooms set is_playing = %s, current_playback_time = 100,"
                " updated_at = now() where room_id = %s",
                (playing, ROOM),
            )
            conn.execute("select seed_ref.bulk_sync_update(%s, 100, 'play_pause')", (ROOM,))

    for warm in (True, False):  # one warm-up round each
        ours_round(warm)
        seed_round(warm)
    for i in range(CONTROL_ROUNDS):
        playing = i % 2 == 0
        ours.append(_time(partial(ours_round, playing)))
        seed.append(_time(partial(seed_round, playing)))
    rows = conn.execute(
        "select count(*) from public.sync_states where room_id = %s", (ROOM,)
    ).fetchone()
    assert rows is not None and rows[0] == MEMBERS * (CONTROL_ROUNDS + 2), rows

    # The floor (issue 8): the same 1,000 rows inserted by one INSERT ... SELECT into an
    # unlogged table with no index, no constraint, no partitioning.
    conn.execute(
        "create unlogged table seed_ref.sync_floor (room_id text, user_id text,"
        " host_time numeric(10,2), member_time numeric(10,2), time_difference numeric(10,2),"
        " is_synced boolean, sync_event_type text, created_at timestamptz default now())"
    )
    floor_sql = (
        "insert into seed_ref.sync_floor (room_id, user_id, host_time, member_time,"
        " time_difference, is_synced, sync_event_type)"
        " select m.room_id, m.user_id, 100, m.current_playback_time,"
        " abs(100 - m.current_playback_time), abs(100 - m.current_playback_time) <= 2, 'play_pause'"
        " from public.room_members as m where m.room_id = %s"
    )

    # bulk_sync_update alone, both called directly by the owner, and the floor, interleaved
    # (autocommit: one transaction each): isolates the set-based statement from the rest of
    # the control.
    ours_bulk: list[float] = []
    seed_bulk: list[float] = []
    floor: list[float] = []
    ours_bulk_sql = "select public.bulk_sync_update(%s, 100, 'play_pause')"
    seed_bulk_sql = "select seed_ref.bulk_sync_update(%s, 100, 'play_pause')"
    for round_no in range(CONTROL_ROUNDS + 1):
        o = _time(partial(conn.execute, ours_bulk_sql, (ROOM,)))
        s = _time(partial(conn.execute, seed_bulk_sql, (ROOM,)))
        f = _time(partial(conn.execute, floor_sql, (ROOM,)))
        if round_no:
            ours_bulk.append(o)
            seed_bulk.append(s)
            floor.append(f)
    return {
        "members": MEMBERS,
        "rounds": CONTROL_ROUNDS,
        "floor_median_ms": _median(floor),
        "over_floor": round(statistics.median(ours) / statistics.median(floor), 1),
        "ours_median_ms": _median(ours),
        "seed_median_ms": _median(seed),
        "speedup": round(statistics.median(seed) / statistics.median(ours), 1),
        "bulk_sync_update_only": {
            "ours_median_ms": _median(ours_bulk),
            "seed_median_ms": _median(seed_bulk),
            "speedup": round(statistics.median(seed_bulk) / statistics.median(ours_bulk), 1),
            "over_floor": round(statistics.median(ours_bulk) / statistics.median(floor), 1),
        },
    }


def load_history(conn: psycopg.Connection[Any], rows: int) -> float:
    """Replace both histories with ``rows`` rows over the last 10 minutes, 100 users."""
    start = time.perf_counter()
    conn.execute("truncate seed_ref.sync_states")
    conn.execute("truncate public.sync_states")
    conn.execute("truncate watchium_private.rate_limit_counters")
    # Spread evenly over the last HISTORY_SPAN_SECONDS, users and event types interleaved.
    history = (
        f"select %(room)s, 'u' || (i %% {HISTORY_USERS}), 100, 100, 0, true,"
        f" (array['heartbeat', 'seek', 'play_pause', 'join'])[1 + (i / {HISTORY_USERS}) %% 4],"
        f" now() - (i::float8 * {HISTORY_SPAN_SECONDS} / %(rows)s) * interval '1 second'"
        " from generate_series(1, %(rows)s) as i"
    )
    conn.execute(
        "insert into seed_ref.sync_states (room_id, user_id, host_time, member_time,"
        " time_difference, is_synced, sync_event_type, created_at) " + history,
        {"room": ROOM, "rows": rows},
    )
    conn.execute(
        "insert into public.sync_states (room_id, user_id, host_time, member_time,"
        " time_difference, is_synced, sync_event_type, created_at) " + history,
        {"room": ROOM, "rows": rows},
    )
    conn.execute("vacuum analyze seed_ref.sync_states")
    conn.execute("vacuum analyze public.sync_states")
    return round(time.perf_counter() - start, 1)


def _loop(call: str) -> str:
    return f"do $$ begin for i in 1..{RATE_CALLS} loop perform {call}; end loop; end $$"


def bench_rate_limit(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "calls_per_round": RATE_CALLS,
        "rounds": RATE_ROUNDS,
        "history_users": HISTORY_USERS,
    }
    # Calls cycle through the 100 users (as 300 separate requests would): ours upserts that
    # user's counter row (the owner connection is trusted), the seed counts that user's rows.
    user = f"'u' || (i % {HISTORY_USERS})"
    ours_sql = f"public.check_rate_limit({user}, 'heartbeat', 1, 1000000)"
    seed_sql = f"seed_ref.check_rate_limit({user}, 'heartbeat', 1, 1000000)"
    for size in HISTORY_SIZES:
        load_seconds = load_history(conn, size)
        counted = conn.execute(
            "select count(*) from seed_ref.sync_states where user_id = 'u1'"
            " and sync_event_type = 'heartbeat' and created_at > now() - interval '1 minute'"
        ).fetchone()
        ours: list[float] = []
        seed: list[float] = []
        # Server-side loops (one round trip per RATE_CALLS calls), interleaved rounds:
        # per-call times without network noise.
        for round_no in range(RATE_ROUNDS + 1):
            ours_ms = _time(partial(conn.execute, _loop(ours_sql)))
            seed_ms = _time(partial(conn.execute, _loop(seed_sql)))
            if round_no:  # round 0 warms up
                ours.append(ours_ms / RATE_CALLS)
                seed.append(seed_ms / RATE_CALLS)
        result[str(size)] = {
            "load_seconds": load_seconds,
            "seed_rows_counted_per_call": counted[0] if counted else None,
            "ours_median_ms": round(statistics.median(ours), 4),
            "seed_median_ms": round(statistics.median(seed), 4),
        }
    small, large = (result[str(s)] for s in HISTORY_SIZES)
    result["ours_large_over_small"] = round(large["ours_median_ms"] / small["ours_median_ms"], 2)
    result["seed_large_over_small"] = round(large["seed_median_ms"] / small["seed_median_ms"], 2)
    return result


def main() -> int:
    started = time.perf_counter()
    with testing.test_server() as server:
        name = f"watchium_bench_quick_sync_{os.getpid()}"
        testing.build_template(server, name)
        url = server.url_for(name)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                version = conn.execute("show server_version").fetchone()
                setup_rooms(conn)
                host_control = bench_host_control(conn)
                print(
                    f"host control, {MEMBERS} members: ours {host_control['ours_median_ms']} ms,"
                    f" seed {host_control['seed_median_ms']} ms,"
                    f" {host_control['speedup']}x faster;"
                    f" floor {host_control['floor_median_ms']} ms, {host_control['over_floor']}x the floor",
                    flush=True,
                )
                bulk = host_control["bulk_sync_update_only"]
                print(
                    f"bulk_sync_update alone: ours {bulk['ours_median_ms']} ms,"
                    f" seed {bulk['seed_median_ms']} ms, {bulk['speedup']}x faster",
                    flush=True,
                )
                rate_limit = bench_rate_limit(conn)
                for size in HISTORY_SIZES:
                    r = rate_limit[str(size)]
                    print(
                        f"check_rate_limit at {size:>9,} history rows: ours {r['ours_median_ms']} ms,"
                        f" seed {r['seed_median_ms']} ms ({r['seed_rows_counted_per_call']} rows"
                        " counted per call)",
                        flush=True,
                    )
                print(
                    f"5M / 10k time ratio: ours {rate_limit['ours_large_over_small']},"
                    f" seed {rate_limit['seed_large_over_small']}",
                    flush=True,
                )
        finally:
            testing.drop_database(server.maintenance_url, name)
        backend = server.description
    results = {
        "benchmark": "quick_sync",
        "server": backend,
        "postgres": version[0] if version else None,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "host_control": host_control,
        "check_rate_limit": rate_limit,
        "targets": {
            "host_control_speedup_at_least": 8,
            "host_control_met": host_control["speedup"] >= 8,
            "host_control_over_floor_at_most": 3,
            "host_control_floor_met": host_control["over_floor"] <= 3,
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
