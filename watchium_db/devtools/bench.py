"""Benchmarks against the seed's reference SQL, side by side, in one run (``make bench``).

Every run starts its own throw-away PostgreSQL server with default durability (fsync,
synchronous_commit and full_page_writes on), migrates a fresh database to head, installs the
seed's reference SQL (``bench/seed_reference.sql``, schema ``seed_ref``) next to it and measures,
in the same run: our implementation, the seed's and, where one exists, the floor (the least work
that could do the job). Results: ``bench/results/latest.json``, ``docs/benchmarks.md`` and PNG
charts in ``docs/`` (charts need the ``bench`` extra: matplotlib).

Ratios within one run are the figures that count; absolute times depend on a noisy shared machine.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from watchium_db import local, migrate
from watchium_db.devtools import release_checksums

ROOT = Path(__file__).resolve().parents[2]
SEED_SQL = ROOT / "bench" / "seed_reference.sql"
RESULTS = ROOT / "bench" / "results" / "latest.json"
DOCS = ROOT / "docs"
MARKDOWN = DOCS / "benchmarks.md"
#: Where a partial run (``--quick`` or ``--only``) writes, so it never replaces the full report.
PARTIAL = ROOT / "bench" / "results" / "partial"


def output_paths(partial: bool, out: Path | None = None) -> tuple[Path, Path]:
    """(JSON, Markdown) paths of a run; charts go next to the Markdown. A full run writes the
    committed report, a partial one ``bench/results/partial/`` unless ``out`` is given."""
    if out is None and not partial:
        return RESULTS, MARKDOWN
    directory = out or PARTIAL
    return directory / "results.json", directory / "benchmarks.md"


ANALYSIS = ROOT / "bench" / "analysis.md"  # hand-written reading of the results, included
STANDIN_SQL = Path(__file__).resolve().parents[1] / "testing" / "supabase_standin.sql"

BENCHMARKS = (
    "host_control",
    "rate_limit",
    "heartbeat_tps",
    "heartbeat_batch",
    "heartbeat_costs",
    "expiry",
    "rls_read",
    "group_wait",
    # Last on the shared database: its maintain() runs remove the other benchmarks' idle members.
    "maintain_waits",
    "release_baseline",
)

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Sizes:
    """What a run measures; ``quick`` shrinks everything to finish in about two minutes."""

    room_sizes: tuple[int, ...]
    control_rounds: int
    history_sizes: tuple[int, ...]
    rate_calls: int
    rate_rounds: int
    pgbench_seconds: int
    pgbench_rounds: int
    cost_heartbeats: int
    expiry_rows: int
    expiry_rounds: int
    rls_rooms: int
    rls_rounds: int
    control_seconds: int
    baseline_seconds: int = 5
    baseline_rounds: int = 3
    maintain_rounds: int = 8
    maintain_round_seconds: int = 4
    maintain_hours_per_round: int = 2
    maintain_rows_per_hour: int = 20_000

    @classmethod
    def for_run(cls, quick: bool) -> Sizes:
        if quick:
            return cls(
                (10, 100, 1000),
                5,
                (10_000, 100_000),
                100,
                3,
                2,
                1,
                4000,
                24_000,
                3,
                500,
                3,
                1,
                baseline_seconds=2,
                baseline_rounds=1,
                maintain_rounds=2,
                maintain_round_seconds=2,
                maintain_rows_per_hour=2_000,
            )
        return cls(
            (10, 100, 1000, 5000),
            11,
            (10_000, 100_000, 1_000_000, 5_000_000),
            300,
            7,
            15,
            3,
            100_000,
            1_000_000,
            3,
            10_000,
            7,
            2,
        )


def _ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def _median(values: list[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def _ratio(a: float, b: float) -> float | None:
    # Three decimals: targets are judged on this figure, so 0.4988 must not pass as 0.50.
    return round(a / b, 3) if b else None


def _one(conn: Conn, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------------------------------------
# server and database
# ---------------------------------------------------------------------------------------------
@contextmanager
def durable_server() -> Iterator[local.LocalServer]:
    """A throw-away local server with PostgreSQL's default durability settings."""
    server = local.throwaway("watchium-bench-")
    root = server.server_dir
    try:
        server.start(("max_wal_size=4GB", "shared_buffers=256MB"))
        server.wait_ready()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def prepare_database(
    server: local.LocalServer, name: str = "watchium_bench", revision: str = "head"
) -> str:
    """A fresh database migrated to ``revision`` (the released head for the baseline), with the
    seed's SQL beside it and the benchmark's settings."""
    with psycopg.connect(server.maintenance_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}"')
        conn.execute(f'create database "{name}"')
    url = server.url_for(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(STANDIN_SQL.read_text().encode())
    migrate.upgrade(url, revision)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_SQL.read_text().encode())
        # Benchmarks call the same functions far faster than any client may: lift the limits
        # (the limiter itself still runs on every call) and the per-member heartbeat throttle.
        conn.execute("update watchium_private.rate_limit_rules set max_requests = 1000000")
        conn.execute(
            "update watchium_private.settings set value = '\"0 seconds\"'"
            " where key = 'heartbeat_min_interval'"
        )
        # As pg_cron does every minute in production: history goes to hourly partitions (the
        # current hour and sync_history_premake ahead), not to the default partition.
        conn.execute("select watchium_private.maintain_sync_history()")
    return url


def baseline_databases(server: local.LocalServer) -> dict[str, str]:
    """Two fresh databases for the head-against-release comparison, made the same way: head,
    and the released head. (Not the main database: the other benchmarks have filled it.)"""
    release = release_checksums.released_head()
    if release is None:
        raise RuntimeError("nothing is released yet (migrations/checksums.json is empty)")
    return {
        "head": prepare_database(server, "watchium_bench_head", "head"),
        "release": prepare_database(server, "watchium_bench_release", release),
    }


def machine_info(conn: Conn) -> dict[str, Any]:
    settings = {
        name: _one(conn, f"show {name}")
        for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_level")
    }
    return {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "postgres": _one(conn, "show server_version"),
        **settings,
        "note": "2 cores shared with other workloads: ratios within this run count",
    }


def make_room(conn: Conn, room_id: str, members: int, prefix: str) -> None:
    """The same room in ours and the seed's schema: host ``<prefix>0``, members at 100 s."""
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number,"
        " video_url, host_user_id, host_username, current_playback_time)"
        " values (%s, 'Bench', 'a1', 'Anime', 1, 'https://example.com/v', %s, 'Host', 100)",
        (room_id, f"{prefix}0"),
    )
    conn.execute(
        "insert into public.room_members (room_id, user_id, username, is_host,"
        " current_playback_time) select %s, %s || i, 'U' || i, i = 0, 100"
        " from generate_series(0, %s - 1) as i",
        (room_id, prefix, members),
    )
    conn.execute(
        "update watchium_private.member_presence set reported_time = 100,"
        " last_heartbeat = now() - interval '1 minute' where room_id = %s",
        (room_id,),
    )
    conn.execute(
        "insert into seed_ref.rooms (room_id, host_user_id, current_playback_time)"
        " values (%s, %s, 100)",
        (room_id, f"{prefix}0"),
    )
    conn.execute(
        "insert into seed_ref.room_members (room_id, user_id, current_playback_time)"
        " select %s, %s || i, 100 from generate_series(0, %s - 1) as i",
        (room_id, prefix, members),
    )


def _as_member(conn: Conn, user_id: str, role: str = "authenticated") -> None:
    """PostgREST's way: one statement sets the role and the claims for the transaction."""
    claims = json.dumps({"sub": user_id, "role": role})
    conn.execute(
        "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
        (role, claims),
    )


# ---------------------------------------------------------------------------------------------
# host control against room size
# ---------------------------------------------------------------------------------------------
def host_control_statements(room: str, host: str, playing: str) -> dict[str, list[str]]:
    """One host control in ``room``, per side: ours as the host in PostgREST's shape (role and
    claims, then the call), the seed's update and loop, the floor's one insert. Several
    statements make one transaction. ``playing`` is an SQL boolean (pgbench: ``:p = 1``).
    Room and host ids are the benchmark's own, so they are written into the SQL."""
    return {
        "ours": [
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims',"
            f" json_build_object('sub', '{host}', 'role', 'authenticated')::text, true)",
            f"select public.change_playback_state('{room}', {playing}, 100)",
        ],
        "seed": [
            f"update seed_ref.rooms set is_playing = {playing}, current_playback_time = 100,"
            f" updated_at = now() where room_id = '{room}'",
            f"select seed_ref.bulk_sync_update('{room}', 100, 'play_pause')",
        ],
        "floor": [
            "insert into seed_ref.floor_sync_states (room_id, user_id, host_time, member_time,"
            " time_difference, is_synced, sync_event_type)"
            " select room_id, user_id, 100, current_playback_time, 0, true, 'play_pause'"
            f" from seed_ref.room_members where room_id = '{room}'",
        ],
    }


def host_control_scripts(room: str, host: str) -> dict[str, str]:
    """The same controls as pgbench scripts, playing or pausing at random."""
    scripts = {}
    for side, statements in host_control_statements(room, host, ":p = 1").items():
        body = "".join(f"{sql};\n" for sql in statements)
        if len(statements) > 1:
            body = f"begin;\n{body}commit;\n"
        scripts[side] = "\\set p random(0, 1)\n" + body
    return scripts


def bench_host_control(conn: Conn, url: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    """Two ways of timing a control, both side by side with the seed's loop and the floor.

    Steady (the figures the targets use): pgbench repeats one side's control back to back for
    ``control_seconds``, sides alternating, ``pgbench_rounds`` rounds; the median of the
    rounds' average latencies. Interleaved: single calls from Python, ours, seed's and floor's
    in turn. On a small shared machine a backend that just ran something else (or sat idle)
    runs its next few milliseconds of work slower; interleaving charges that once per call,
    which weighs on a 2 ms control far more than on a 15 ms loop. Both are reported.
    """
    out: dict[str, Any] = {
        "rounds": sizes.control_rounds,
        "steady_seconds": sizes.control_seconds,
        "steady_rounds": sizes.pgbench_rounds,
        "by_members": {},
    }
    for n in sizes.room_sizes:
        room = f"hc{n:08d}"
        make_room(conn, room, n, f"hc{n}_")
        conn.execute("analyze")

        def control(side: str, playing: bool, room: str = room, host: str = f"hc{n}_0") -> None:
            statements = host_control_statements(room, host, str(playing).lower())[side]
            if len(statements) == 1:
                conn.execute(statements[0])
                return
            with conn.transaction():
                for sql in statements:
                    conn.execute(sql)

        times: dict[str, list[float]] = {"ours": [], "seed": [], "floor": []}
        for i in range(sizes.control_rounds + 1):
            playing = i % 2 == 0
            for label in ("ours", "seed", "floor"):
                elapsed = _ms(partial(control, label, playing))
                if i:  # round 0 warms up
                    times[label].append(elapsed)
        # The controls' history (the members' join records are not counted).
        controls = "where room_id = %s and sync_event_type = 'play_pause'"
        written = _one(conn, f"select count(*) from public.sync_records {controls}", (room,))
        rows = _one(conn, f"select count(*) from public.sync_states {controls}", (room,))
        interleaved = {k: _median(v) for k, v in times.items()}

        scripts = host_control_scripts(room, f"hc{n}_0")
        steady_runs: dict[str, list[float]] = {k: [] for k in scripts}
        for _ in range(sizes.pgbench_rounds):
            for label, script in scripts.items():
                steady_runs[label].append(
                    pgbench_latency_ms(
                        url, workdir, ["-c", "1", "-T", str(sizes.control_seconds)], script
                    )
                )
        med = {k: _median(v) for k, v in steady_runs.items()}
        out["by_members"][str(n)] = {
            "ours_ms": med["ours"],
            "seed_ms": med["seed"],
            "floor_ms": med["floor"],
            "speedup_vs_seed": _ratio(med["seed"], med["ours"]),
            "ours_over_floor": _ratio(med["ours"], med["floor"]),
            "interleaved": {
                "ours_ms": interleaved["ours"],
                "seed_ms": interleaved["seed"],
                "floor_ms": interleaved["floor"],
                "speedup_vs_seed": _ratio(interleaved["seed"], interleaved["ours"]),
                "ours_over_floor": _ratio(interleaved["ours"], interleaved["floor"]),
            },
            "sync_records_written_by_ours": written,
            "history_rows_written_by_ours": rows,
        }
        conn.execute("truncate seed_ref.floor_sync_states")
    return out


# ---------------------------------------------------------------------------------------------
# group wait and ready check in a room of 1,000
# ---------------------------------------------------------------------------------------------
GROUP_WAIT_MEMBERS = 1000


def bench_group_wait(conn: Conn, sizes: Sizes) -> dict[str, Any]:
    """Each waiting transition as one call in a room of 1,000 members who have all loaded:
    a buffering report that makes the playing room wait, a second blocker, the ready report
    that leaves one blocker, the one that resumes; a ready check started by the host, a
    member's answer, the answer that completes it; and 999 blockers' deadlines applied at
    once (apply_sync_deadlines: all skipped, the room resumes). Median ms per call over the
    rounds, client-side, claims and role included."""
    room, prefix, n = "gw00001000", "gw_", GROUP_WAIT_MEMBERS
    make_room(conn, room, n, prefix)
    conn.execute(
        "insert into watchium_private.member_playback (room_id, user_id, loaded_at)"
        " select room_id, user_id, now() from public.room_members where room_id = %s",
        (room,),
    )
    conn.execute("analyze")
    host = f"{prefix}0"

    def call(user: str, sql: str, *params: Any) -> float:
        def run() -> None:
            with conn.transaction():
                _as_member(conn, user)
                conn.execute(sql, (room, *params))

        return _ms(run)

    def play() -> None:
        conn.execute(
            "update public.rooms set is_playing = true, playback_updated_at = now(),"
            " waiting_since = null, waiting_reason = null, sync_deadline = null,"
            " ready_check_min_ready = null where room_id = %s",
            (room,),
        )

    report = "select public.report_playback_status(%s, %s, 100)"
    times: dict[str, list[float]] = {
        k: []
        for k in (
            "wait_start",
            "second_blocker",
            "ready_one_left",
            "resume",
            "ready_check_start",
            "set_ready",
            "ready_check_complete",
            "deadlines_999_blockers",
            "host_control_reference",
        )
    }
    rounds = sizes.control_rounds
    for i in range(rounds + 1):
        a, b = f"{prefix}{1 + 2 * i}", f"{prefix}{2 + 2 * i}"
        play()
        sample = {
            "wait_start": call(a, report, "buffering"),
            "second_blocker": call(b, report, "buffering"),
            "ready_one_left": call(a, report, "ready"),
            "resume": call(b, report, "ready"),
        }
        # Reference: a host control timed the same way (the room's snapshot of 1,000 members).
        sample["host_control_reference"] = call(
            host, "select public.change_playback_state(%s, true, 100)"
        )
        play()
        sample["ready_check_start"] = call(host, "select public.start_ready_check(%s, 60, 3)")
        sample["set_ready"] = call(a, "select public.set_ready(%s, true)")
        sample["ready_check_complete"] = call(b, "select public.set_ready(%s, true)")
        conn.execute(
            "update watchium_private.member_playback set status = 'buffering',"
            " wait_deadline = now() - interval '1 second' where room_id = %s and user_id <> %s",
            (room, host),
        )
        conn.execute(
            "update public.rooms set is_playing = false, waiting_since = now(),"
            " waiting_reason = 'buffering', sync_deadline = now() - interval '1 second'"
            " where room_id = %s",
            (room,),
        )
        sample["deadlines_999_blockers"] = _ms(
            lambda: conn.execute("select watchium_private.apply_sync_deadlines(%s, false)", (room,))
        )
        conn.execute(
            "update watchium_private.member_playback set status = 'ready', skipped_at = null"
            " where room_id = %s",
            (room,),
        )
        if i:  # round 0 warms up
            for k, v in sample.items():
                times[k].append(v)
    return {
        "members": n,
        "rounds": rounds,
        "ms": {k: _median(v) for k, v in times.items()},
    }


# ---------------------------------------------------------------------------------------------
# check_rate_limit against history size
# ---------------------------------------------------------------------------------------------
def load_history(conn: Conn, rows: int, room: str) -> float:
    """Both histories: ``rows`` rows over the last 10 minutes, 100 users, four event types."""
    start = time.perf_counter()
    conn.execute("truncate seed_ref.sync_states")
    conn.execute("truncate public.sync_states")
    conn.execute("truncate watchium_private.rate_limit_counters")
    # Timestamps from clock_timestamp(), newest last: the rows of the last minute are the last
    # ones written, so a long load does not age the seed's one-minute window out of its
    # history before it is measured. The seed's table is loaded last and only analyzed.
    history = (
        "select %(room)s, 'u' || (i %% 100), 100, 100, 0, true,"
        " (array['heartbeat', 'seek', 'play_pause', 'join'])[1 + (i / 100) %% 4],"
        " clock_timestamp() - ((%(rows)s - i)::float8 * 600 / %(rows)s) * interval '1 second'"
        " from generate_series(1, %(rows)s) as i"
    )
    columns = (
        "(room_id, user_id, host_time, member_time, time_difference, is_synced,"
        " sync_event_type, created_at) "
    )
    params = {"room": room, "rows": rows}
    conn.execute("insert into public.sync_states " + columns + history, params)
    conn.execute("vacuum analyze public.sync_states")
    conn.execute("insert into seed_ref.sync_states " + columns + history, params)
    conn.execute("analyze seed_ref.sync_states")
    elapsed = round(time.perf_counter() - start, 1)
    # Write the load out now: the calls measured next must not share the disk with it.
    conn.execute("checkpoint")
    return elapsed


def bench_rate_limit(conn: Conn, sizes: Sizes) -> dict[str, Any]:
    room = "rl00000001"
    make_room(conn, room, 1, "rl")
    calls = sizes.rate_calls
    user = "'u' || (i % 100)"

    def loop(call: str) -> str:
        return f"do $$ begin for i in 1..{calls} loop perform {call}; end loop; end $$"

    ours_sql = loop(f"public.check_rate_limit({user}, 'heartbeat', 1, 1000000)")
    seed_sql = loop(f"seed_ref.check_rate_limit({user}, 'heartbeat', 1, 1000000)")
    out: dict[str, Any] = {"calls_per_round": calls, "rounds": sizes.rate_rounds, "by_rows": {}}
    for rows in sizes.history_sizes:
        load_seconds = load_history(conn, rows, room)
        ours: list[float] = []
        seed: list[float] = []
        for i in range(sizes.rate_rounds + 1):
            # Each timed loop right after an untimed one of the same function: ours takes about
            # 30 us a call, and measured straight after the seed's loop (which reads hundreds of
            # MB at 5M rows) it paid for the CPU caches that loop emptied, growing 1.3-2.4x with
            # history it never reads; measured warm it stays flat. The seed gets the same.
            conn.execute(ours_sql)
            o = _ms(lambda: conn.execute(ours_sql)) / calls
            conn.execute(seed_sql)
            s = _ms(lambda: conn.execute(seed_sql)) / calls
            if i:
                ours.append(o)
                seed.append(s)
        counted = _one(
            conn,
            "select count(*) from seed_ref.sync_states where user_id = 'u1'"
            " and sync_event_type = 'heartbeat' and created_at > now() - interval '1 minute'",
        )
        out["by_rows"][str(rows)] = {
            "load_seconds": load_seconds,
            "seed_rows_counted_per_call_after": counted,
            "ours_ms": _median(ours, 4),
            "seed_ms": _median(seed, 4),
            "speedup_vs_seed": _ratio(statistics.median(seed), statistics.median(ours)),
        }
    by_rows = out["by_rows"]
    small, large = by_rows[str(sizes.history_sizes[0])], by_rows[str(sizes.history_sizes[-1])]
    out["ours_largest_over_smallest"] = _ratio(large["ours_ms"], small["ours_ms"])
    out["seed_largest_over_smallest"] = _ratio(large["seed_ms"], small["seed_ms"])
    conn.execute("truncate seed_ref.sync_states")
    conn.execute("truncate public.sync_states")
    conn.execute("truncate watchium_private.rate_limit_counters")
    return out


# ---------------------------------------------------------------------------------------------
# pgbench
# ---------------------------------------------------------------------------------------------
HB_ROOMS = 8
HB_MEMBERS = 50


def hb_room(i: int | str) -> str:
    return f"hbroom000{i}"


#: The optional heartbeat arguments since 0024: a send time (the server clock, so plausible), a
#: measured RTT and the room's episode; the "with latency" baseline cases send them on head.
HB_LATENCY_ARGS = (
    ", p_client_time => extract(epoch from now()) * 1000, p_rtt_ms => 80, p_episode_number => 1"
)


def heartbeat_script(
    rooms: int, call: str = "public.record_heartbeat", extra_args: str = ""
) -> str:
    """One member's heartbeat per transaction, acting as that member. Shaped as PostgREST's
    transaction: one statement sets the role and the claims, the next calls the function.
    ``extra_args`` (named arguments) follow the three positional ones."""
    return (
        f"\\set r random(1, {rooms})\n"
        f"\\set m :client_id + 8 * random(0, {HB_MEMBERS // 8 - 1})\n"
        "begin;\n"
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims',"
        " json_build_object('sub', 'hb' || :r || '_' || :m, 'role', 'authenticated')::text,"
        " true);\n"
        f"select {call}('hbroom000' || :r, 100.5, true{extra_args});\n"
        "commit;\n"
    )


def seed_heartbeat_script(rooms: int) -> str:
    return (
        f"\\set r random(1, {rooms})\n"
        f"\\set m :client_id + 8 * random(0, {HB_MEMBERS // 8 - 1})\n"
        "select seed_ref.record_heartbeat('hbroom000' || :r, 'hb' || :r || '_' || :m,"
        " 100.5, true);\n"
    )


def seed_same_shape_script(rooms: int) -> str:
    """The seed's heartbeat called as a Supabase client would call it: PostgREST's transaction
    (role and claims set, then the call), the member's id passed as the seed's RPC takes it."""
    return (
        f"\\set r random(1, {rooms})\n"
        f"\\set m :client_id + 8 * random(0, {HB_MEMBERS // 8 - 1})\n"
        "begin;\n"
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims',"
        " json_build_object('sub', 'hb' || :r || '_' || :m, 'role', 'authenticated')::text,"
        " true);\n"
        "select seed_ref.record_heartbeat('hbroom000' || :r, 'hb' || :r || '_' || :m,"
        " 100.5, true);\n"
        "commit;\n"
    )


def batch_script(latency: bool = False) -> str:
    """An edge server relaying the heartbeats of a whole 50-member room in one call, as
    service_role (PostgREST's shape: role set, then the call). The arrays are literals, as a
    client sends them; pgbench puts the room number into the user ids. ``latency``: with a
    send time (now), an RTT and the episode per member (0024's optional arrays)."""
    user_ids = ",".join(f"hb:r_{m}" for m in range(HB_MEMBERS))
    times = ",".join("100.5" for _ in range(HB_MEMBERS))
    playing = ",".join("t" for _ in range(HB_MEMBERS))
    extra = ""
    if latency:
        rtts = ",".join("80" for _ in range(HB_MEMBERS))
        episodes = ",".join("1" for _ in range(HB_MEMBERS))
        extra = (
            ", p_client_times => array_fill(extract(epoch from now()) * 1000,"
            f" array[{HB_MEMBERS}]), p_rtts_ms => '{{{rtts}}}',"
            f" p_episode_numbers => '{{{episodes}}}'"
        )
    return (
        "\\set r 1 + :client_id + 4 * random(0, 1)\n"
        "begin;\n"
        "select set_config('role', 'service_role', true);\n"
        f"select * from public.record_heartbeats('hbroom000' || :r, '{{{user_ids}}}',"
        f" '{{{times}}}', '{{{playing}}}'{extra});\n"
        "commit;\n"
    )


def batch_floor_script() -> str:
    """The floor: one bare set-based update of the same 50 presence rows."""
    return (
        "\\set r 1 + :client_id + 4 * random(0, 1)\n"
        "update watchium_private.member_presence set last_heartbeat = now(), reported_time = 100.5,"
        " is_playing = true where room_id = 'hbroom000' || :r;\n"
    )


def _run_pgbench(url: str, workdir: Path, args: list[str], script: str | None) -> str:
    """Run pgbench and return its output; raises when it fails or reports failed transactions."""
    cmd = [str(local.find_bindir() / "pgbench"), *args]
    if script is not None:
        path = workdir / f"script_{abs(hash(script))}.sql"
        path.write_text(script)
        cmd += ["-n", "-f", str(path)]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    failed = re.search(r"number of failed transactions: (\d+)", output)
    if proc.returncode != 0 or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench failed ({proc.returncode}): {output[-2000:]}")
    return output


def pgbench(url: str, workdir: Path, args: list[str], script: str | None = None) -> float:
    """Run pgbench; returns TPS (without initial connection time)."""
    output = _run_pgbench(url, workdir, args, script)
    if "-i" in args:
        return 0.0
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    if not match:
        raise RuntimeError(f"no tps in pgbench output: {output[-2000:]}")
    return float(match.group(1))


def pgbench_latency_ms(url: str, workdir: Path, args: list[str], script: str) -> float:
    """Run pgbench; returns its average transaction latency in ms."""
    output = _run_pgbench(url, workdir, args, script)
    match = re.search(r"latency average = ([0-9.]+) ms", output)
    if not match:
        raise RuntimeError(f"no latency in pgbench output: {output[-2000:]}")
    return float(match.group(1))


def pgbench_statement_latencies(
    url: str, workdir: Path, args: list[str], script: str | None
) -> dict[str, float]:
    cmd = [str(local.find_bindir() / "pgbench"), *args, "-n"]
    if script is not None:
        path = workdir / "profile.sql"
        path.write_text(script)
        cmd += ["-f", str(path)]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    latencies: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"\s+([0-9.]+)\s+\d+\s+(.*)$", line)
        if match and not match.group(2).startswith("\\set"):
            latencies[match.group(2).strip()[:80]] = float(match.group(1))
    return latencies


def setup_heartbeat_rooms(conn: Conn) -> None:
    if _one(conn, "select count(*) from public.rooms where room_id = %s", (hb_room(1),)):
        return
    for i in range(1, HB_ROOMS + 1):
        make_room(conn, hb_room(i), HB_MEMBERS, f"hb{i}_")
    conn.execute("vacuum analyze")


def bench_heartbeat_tps(conn: Conn, url: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    setup_heartbeat_rooms(conn)
    pgbench(url, workdir, ["-i", "-s", "1", "-q"])
    run = ["-c", "8", "-j", "2", "-T", str(sizes.pgbench_seconds)]
    cases: dict[str, tuple[list[str], str | None]] = {
        "simple_update": ([*run, "-n", "-b", "simple-update"], None),
        "ours_8_rooms": (run, heartbeat_script(HB_ROOMS)),
        "ours_one_room_of_50": (run, heartbeat_script(1)),
        "rpc_floor_8_rooms": (run, heartbeat_script(HB_ROOMS, "seed_ref.floor_heartbeat")),
        "seed_8_rooms": (run, seed_heartbeat_script(HB_ROOMS)),
        "seed_same_shape_8_rooms": (run, seed_same_shape_script(HB_ROOMS)),
    }
    tps: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(sizes.pgbench_rounds):
        for label, (args, script) in cases.items():
            tps[label].append(pgbench(url, workdir, args, script))
    med = {k: _median(v, 1) for k, v in tps.items()}
    # Where a heartbeat transaction spends its time: pgbench's per-statement latencies.
    profile_args = ["-c", "8", "-j", "2", "-T", str(max(2, sizes.pgbench_seconds // 3)), "-r"]
    return {
        "statement_latencies_ms": {
            "ours_8_rooms": pgbench_statement_latencies(
                url, workdir, profile_args, heartbeat_script(HB_ROOMS)
            ),
            "simple_update": pgbench_statement_latencies(
                url, workdir, [*profile_args, "-b", "simple-update"], None
            ),
        },
        "clients": 8,
        "seconds": sizes.pgbench_seconds,
        "rounds": sizes.pgbench_rounds,
        "tps": med,
        "ours_8_rooms_over_simple_update": _ratio(med["ours_8_rooms"], med["simple_update"]),
        "ours_one_room_over_simple_update": _ratio(
            med["ours_one_room_of_50"], med["simple_update"]
        ),
        "seed_8_rooms_over_simple_update": _ratio(med["seed_8_rooms"], med["simple_update"]),
        "rpc_floor_over_simple_update": _ratio(med["rpc_floor_8_rooms"], med["simple_update"]),
        "ours_8_rooms_over_rpc_floor": _ratio(med["ours_8_rooms"], med["rpc_floor_8_rooms"]),
        "ours_8_rooms_over_seed_same_shape": _ratio(
            med["ours_8_rooms"], med["seed_same_shape_8_rooms"]
        ),
    }


def bench_heartbeat_batch(conn: Conn, url: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    setup_heartbeat_rooms(conn)
    run = ["-c", "4", "-j", "2", "-T", str(sizes.pgbench_seconds)]
    ours: list[float] = []
    floor: list[float] = []
    for _ in range(sizes.pgbench_rounds):
        ours.append(pgbench(url, workdir, run, batch_script()) * HB_MEMBERS)
        floor.append(pgbench(url, workdir, run, batch_floor_script()) * HB_MEMBERS)
    o, f = _median(ours, 0), _median(floor, 0)
    return {
        "clients": 4,
        "members_per_call": HB_MEMBERS,
        "seconds": sizes.pgbench_seconds,
        "rounds": sizes.pgbench_rounds,
        "ours_member_heartbeats_per_s": o,
        "floor_member_heartbeats_per_s": f,
        "ours_over_floor": _ratio(o, f),
    }


# ---------------------------------------------------------------------------------------------
# per-heartbeat costs: WAL, HOT, published change rows, MultiXact ids
# ---------------------------------------------------------------------------------------------


def _published_tables(conn: Conn) -> list[str]:
    rows = conn.execute(
        "select schemaname || '.' || tablename from pg_publication_tables"
        " where pubname = 'supabase_realtime'"
    ).fetchall()
    return [r[0] for r in rows]


def _table_stats(conn: Conn, table: str) -> tuple[int, int]:
    schema, name = table.split(".")
    row = conn.execute(
        "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables"
        " where schemaname = %s and relname = %s",
        (schema, name),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


# Production: a member's heartbeat every 3 s and at most one history sample per member per
# heartbeat_sample_interval (60 s): one heartbeat in 20 writes a sample.
PRODUCTION_HEARTBEATS_PER_SAMPLE = 20


@contextmanager
def _production_sampling(conn: Conn, url: str, workdir: Path, script: str) -> Iterator[float]:
    """Scale heartbeat_sample_interval to the benchmark's pace, so that a member writes one
    history sample every PRODUCTION_HEARTBEATS_PER_SAMPLE of its heartbeats, as in production.
    The benchmark sends a member's heartbeats far faster than every 3 s; with the production
    interval no sample would fall in the measurement at all."""
    tps = pgbench(url, workdir, ["-c", "8", "-j", "2", "-T", "2"], script)
    seconds = PRODUCTION_HEARTBEATS_PER_SAMPLE * HB_MEMBERS / max(tps, 1.0)
    before = _one(
        conn, "select value from watchium_private.settings where key = 'heartbeat_sample_interval'"
    )
    conn.execute(
        "update watchium_private.settings set value = to_jsonb(%s::text)"
        " where key = 'heartbeat_sample_interval'",
        (f"{seconds:.6f} seconds",),
    )
    try:
        yield seconds
    finally:
        conn.execute(
            "update watchium_private.settings set value = %s"
            " where key = 'heartbeat_sample_interval'",
            (Jsonb(before),),
        )


def _measure_heartbeats(
    conn: Conn, url: str, workdir: Path, script: str, count: int, table: str, schemas: list[str]
) -> dict[str, Any]:
    """Run ``count`` heartbeats; WAL, HOT share, MultiXacts, and every change logical decoding
    emits for a relation in ``schemas``, by relation name (partitions under their own names, as
    a publication with publish_via_partition_root = false emits them)."""
    conn.execute("checkpoint")
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select pg_create_logical_replication_slot('bench_slot', 'test_decoding')")
    try:
        upd0, hot0 = _table_stats(conn, table)
        events0 = int(_one(conn, "select count(*) from watchium_private.room_events"))
        mx0 = int(_one(conn, "select next_multixact_id::text::bigint from pg_control_checkpoint()"))
        lsn0 = _one(conn, "select pg_current_wal_lsn()")
        per_client = max(1, count // 8)
        pgbench(url, workdir, ["-c", "8", "-j", "2", "-t", str(per_client)], script)
        done = per_client * 8
        wal = int(_one(conn, "select pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint", (lsn0,)))
        events = int(_one(conn, "select count(*) from watchium_private.room_events")) - events0
        conn.execute("checkpoint")
        mx1 = int(_one(conn, "select next_multixact_id::text::bigint from pg_control_checkpoint()"))
        time.sleep(1.0)  # pgbench backends flush their statistics when they exit
        conn.execute("select pg_stat_clear_snapshot()")
        upd1, hot1 = _table_stats(conn, table)
        # test_decoding writes "table <schema>.<name>: <ACTION>: ...".
        rows = conn.execute(
            "select split_part(substr(data, 7), ':', 1) as relation, count(*)"
            " from pg_logical_slot_get_changes('bench_slot', null, null)"
            " where starts_with(data, 'table ')"
            " and split_part(substr(data, 7), '.', 1) = any(%s)"
            " group by 1 order by 1",
            (schemas,),
        ).fetchall()
    finally:
        conn.execute("select pg_drop_replication_slot('bench_slot')")
    decoded = {r[0]: int(r[1]) for r in rows}
    published = set(_published_tables(conn))
    emitted = {rel: n for rel, n in decoded.items() if rel in published}
    updates = upd1 - upd0
    return {
        "heartbeats": done,
        "wal_bytes_per_heartbeat": round(wal / done, 1),
        "published_change_rows_per_heartbeat": round(sum(emitted.values()) / done, 4),
        "published_change_rows_by_relation": emitted,
        "decoded_change_rows_by_relation": decoded,
        "multixact_ids_consumed": mx1 - mx0,
        "room_events_per_heartbeat": round(events / done, 4),
        "presence_table": table,
        "presence_updates": updates,
        "hot_share": round((hot1 - hot0) / updates, 4) if updates else None,
    }


def bench_heartbeat_costs(conn: Conn, url: str, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    setup_heartbeat_rooms(conn)
    conn.execute("vacuum analyze watchium_private.member_presence")
    conn.execute("vacuum analyze seed_ref.room_members")

    def history_samples() -> int:
        return int(
            _one(
                conn,
                "select count(*) from public.sync_states where room_id = %s"
                " and sync_event_type = 'heartbeat' and created_at > now() - interval '10 minutes'",
                (hb_room(1),),
            )
        )

    def measure_ours(script: str) -> tuple[dict[str, Any], float, int]:
        # One hot room: all 8 clients heartbeat the 50 members of room 1, history sampled at
        # the production rate (scaled to this script's own pace).
        with _production_sampling(conn, url, workdir, script) as interval:
            before = history_samples()
            measured = _measure_heartbeats(
                conn,
                url,
                workdir,
                script,
                sizes.cost_heartbeats,
                "watchium_private.member_presence",
                ["public", "watchium_private"],
            )
            return measured, interval, history_samples() - before

    ours, interval, samples = measure_ours(heartbeat_script(1))
    # The same heartbeats carrying a send time, an RTT and the room's episode (0024).
    ours_latency, interval_latency, samples_latency = measure_ours(
        heartbeat_script(1, extra_args=HB_LATENCY_ARGS)
    )
    seed = _measure_heartbeats(
        conn,
        url,
        workdir,
        seed_heartbeat_script(1),
        sizes.cost_heartbeats,
        "seed_ref.room_members",
        ["seed_ref"],
    )
    # The seed publishes rooms, room_members and sync_states: every change of theirs.
    seed["published_change_rows_per_heartbeat"] = round(
        sum(seed["decoded_change_rows_by_relation"].values()) / seed["heartbeats"], 4
    )
    seed["published_change_rows_by_relation"] = seed["decoded_change_rows_by_relation"]
    return {
        "published_relations_ours": sorted(_published_tables(conn)),
        "sample_interval_seconds": round(interval, 4),
        "heartbeats_per_sample_in_production": PRODUCTION_HEARTBEATS_PER_SAMPLE,
        "history_samples_per_heartbeat": round(samples / max(ours["heartbeats"], 1), 4),
        "sample_interval_seconds_latency": round(interval_latency, 4),
        "history_samples_per_heartbeat_latency": round(
            samples_latency / max(ours_latency["heartbeats"], 1), 4
        ),
        "ours": ours,
        "ours_latency": ours_latency,
        "seed": seed,
        "wal_ours_over_seed": _ratio(
            ours["wal_bytes_per_heartbeat"], seed["wal_bytes_per_heartbeat"]
        ),
    }


# ---------------------------------------------------------------------------------------------
# expiring a day of history
# ---------------------------------------------------------------------------------------------
def bench_expiry(conn: Conn, sizes: Sizes) -> dict[str, Any]:
    room = "ex00000001"
    make_room(conn, room, 1, "ex")
    day = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = sizes.expiry_rows
    conn.execute("truncate seed_ref.sync_states")  # the seed's table holds only this day
    ours: list[float] = []
    seed: list[float] = []
    seed_vacuum: list[float] = []

    def make_partitions() -> list[str]:
        names = []
        for h in range(24):
            start = day + timedelta(hours=h)
            name = "sync_states_p" + start.strftime("%Y%m%d%H")
            names.append(name)
            conn.execute(
                f"create table public.{name}"
                " (like public.sync_states including defaults including constraints)"
            )
            conn.execute(
                f"alter table public.sync_states attach partition public.{name}"
                f" for values from ('{start.isoformat()}') to"
                f" ('{(start + timedelta(hours=1)).isoformat()}')"
            )
        return names

    def expire_hourly(names: list[str]) -> list[float]:
        # As maintenance retires a partition: detach it, then drop it; one hour at a time.
        costs = []
        for name in names:
            start = time.perf_counter()
            conn.execute(f"alter table public.sync_states detach partition public.{name}")
            conn.execute(f"drop table public.{name}")
            costs.append((time.perf_counter() - start) * 1000)
        return costs

    hour_full: list[float] = []
    hour_empty: list[float] = []
    for _ in range(sizes.expiry_rounds):
        # The DDL alone: the same 24 partitions, empty.
        empty = make_partitions()
        conn.execute("checkpoint")
        hour_empty += expire_hourly(empty)
        names = make_partitions()
        history = (
            "select %(room)s, 'u' || (i %% 100), 100, 100, 0, true, 'heartbeat',"
            " %(day)s::timestamptz + (i::float8 * 86399 / %(rows)s) * interval '1 second'"
            " from generate_series(1, %(rows)s) as i"
        )
        columns = (
            "(room_id, user_id, host_time, member_time, time_difference, is_synced,"
            " sync_event_type, created_at) "
        )
        params = {"room": room, "rows": rows, "day": day}
        conn.execute("insert into public.sync_states " + columns + history, params)
        conn.execute("insert into seed_ref.sync_states " + columns + history, params)
        conn.execute("vacuum analyze seed_ref.sync_states")
        conn.execute("checkpoint")

        def delete() -> None:
            conn.execute(
                "delete from seed_ref.sync_states where created_at < %s",
                (day + timedelta(days=1),),
            )

        hours = expire_hourly(names)
        hour_full += hours
        ours.append(round(sum(hours), 3))
        seed.append(_ms(delete))
        left = _one(
            conn,
            "select count(*) from seed_ref.sync_states where created_at < %s",
            (day + timedelta(days=1),),
        )
        assert left == 0, f"the seed's delete left {left} rows"
        # The work the DELETE leaves behind: its dead rows are reclaimed by vacuum.
        seed_vacuum.append(_ms(lambda: conn.execute("vacuum seed_ref.sync_states")))
    o, s = _median(ours), _median(seed)
    return {
        "rows": rows,
        "rows_per_hour": rows // 24,
        "rounds": sizes.expiry_rounds,
        "ours_hour_full_median_ms": _median(hour_full),
        "ours_hour_full_max_ms": round(max(hour_full), 3),
        "ours_hour_empty_median_ms": _median(hour_empty),
        "ours_hour_empty_max_ms": round(max(hour_empty), 3),
        "ours_day_ms": o,
        "seed_delete_ms": s,
        "seed_vacuum_after_delete_ms": _median(seed_vacuum),
        "speedup_vs_seed": _ratio(s, o),
        "speedup_vs_seed_delete_and_vacuum": _ratio(s + _median(seed_vacuum), o),
    }


# ---------------------------------------------------------------------------------------------
# maintain() against concurrent member RPCs
# ---------------------------------------------------------------------------------------------
MW_ROOM = "mw00000001"
MW_CLIENTS = 4
#: Member RPCs that touch what maintain() touches: presence and history (the heartbeat, which
#: writes history samples), the room (sync state), history (the metrics read sync_states) and
#: the published snapshot. Each runs as PostgREST runs it: role and claims, call, commit.
MW_CALLS = {
    "record_heartbeat": "select public.record_heartbeat(%s, 100.5, true)",
    "get_room_sync_state": "select public.get_room_sync_state(%s)",
    "get_room_sync_metrics": "select public.get_room_sync_metrics(%s)",
    "read_sync_records": "select count(*) from public.sync_records where room_id = %s",
}
_WAIT_LOG = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (LOG|DETAIL|CONTEXT|STATEMENT):\s+(.*)$")
_STILL_WAITING = re.compile(r"process (\d+) still waiting for (\S+) on (.+) after ([0-9.]+) ms")
_ACQUIRED = re.compile(r"process (\d+) acquired (\S+) on (.+) after ([0-9.]+) ms")


def parse_lock_waits(log: str) -> list[dict[str, Any]]:
    """The lock waits of a server log written with ``log_lock_waits`` (prefix ``%m [%p]``):
    per wait the waiting pid, the lock mode and object, the holders and the queue ahead, the
    waiting statement (and its PL/pgSQL context), and how long it waited (the ``acquired``
    line's figure when there is one, else the time it had waited when it was logged)."""
    waits: list[dict[str, Any]] = []
    current: dict[int, dict[str, Any]] = {}
    last: tuple[dict[str, Any], str] | None = None
    for line in log.splitlines():
        match = _WAIT_LOG.match(line)
        if not match:
            if last and line.startswith("\t"):  # a continuation of the previous field
                last[0][last[1]] += " " + line.strip()
            continue
        pid, kind, text = int(match.group(1)), match.group(2), match.group(3)
        last = None
        if kind == "LOG":
            still = _STILL_WAITING.match(text)
            acquired = _ACQUIRED.match(text)
            current.pop(pid, None)
            if still:
                wait: dict[str, Any] = {
                    "pid": int(still.group(1)),
                    "mode": still.group(2),
                    "object": still.group(3),
                    "waited_ms": float(still.group(4)),
                    "holders": [],
                    "queue": [],
                    "context": "",
                    "statement": "",
                }
                waits.append(wait)
                current[pid] = wait
            elif acquired:
                for wait in reversed(waits):
                    if wait["pid"] == pid and wait["object"] == acquired.group(3):
                        wait["waited_ms"] = float(acquired.group(4))
                        break
            continue
        found = current.get(pid)
        if found is None:
            continue
        wait = found
        if kind == "DETAIL" and "holding the lock" in text:
            holders, _, queue = text.partition("Wait queue:")
            wait["holders"] = [int(n) for n in re.findall(r"\d+", holders.split(":", 1)[-1])]
            wait["queue"] = [int(n) for n in re.findall(r"\d+", queue)]
        elif kind in ("CONTEXT", "STATEMENT"):
            field_name = kind.lower()
            wait[field_name] = text
            last = (wait, field_name)
    return waits


def _percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"calls": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(ordered[-1], 3),
    }


def bench_maintain_waits(conn: Conn, url: str, sizes: Sizes) -> dict[str, Any]:
    """Does a maintain() run make a member RPC wait? MW_CLIENTS threads, each a member of one
    room with its own connection, call the MW_CALLS RPCs in turn, first without maintenance
    (the baseline), then while one more connection runs ``public.maintain()`` back to back, as
    service_role. Before each round of that phase the RPCs are held (no call in flight) while
    hourly history partitions two days old, filled, are attached, so that maintain() has
    partitions to retire (detach, then drop in a later run) in every round, beside its other
    jobs; after each round, with the RPCs held again, three more runs (not timed) retire what the
    round left. Heartbeats write history samples (``heartbeat_sample_interval`` 0.5 s for the
    run).

    Lock waits are measured by the server itself: each RPC connection sets ``log_lock_waits``
    with ``deadlock_timeout = 1ms``, so every lock wait of an RPC backend that lasts 1 ms or
    more is written to the server log with the lock, the holders and the queue ahead of it, the
    waiting statement and, once it is granted, how long it waited. A wait counts as caused by
    maintain() when maintain's backend holds the lock or queues for it ahead of the RPC (an RPC
    queued behind maintain's request waits for it too). Shorter waits are not logged; they are
    inside the per-call latencies, which are reported per phase (client-side)."""
    make_room(conn, MW_ROOM, MW_CLIENTS, "mw")
    size0 = int(_one(conn, "select size from pg_stat_file('server.log')"))
    before = _one(
        conn, "select value from watchium_private.settings where key = 'heartbeat_sample_interval'"
    )
    conn.execute(
        "update watchium_private.settings set value = '\"0.5 seconds\"'"
        " where key = 'heartbeat_sample_interval'"
    )
    gate = threading.Condition()
    state: dict[str, Any] = {"paused": False, "stop": False, "phase": "baseline", "active": 0}
    calls: list[tuple[str, str, float]] = []
    errors: dict[str, int] = {}
    rpc_pids: list[int] = []

    def worker(i: int) -> None:
        claims = json.dumps({"sub": f"mw{i}", "role": "authenticated"})
        names = list(MW_CALLS)
        with psycopg.connect(url) as c:
            c.execute("set deadlock_timeout = '1ms'")
            c.execute("set log_lock_waits = on")
            c.commit()
            rpc_pids.append(c.info.backend_pid)
            n = i
            while True:
                with gate:
                    while state["paused"] and not state["stop"]:
                        gate.wait()
                    if state["stop"]:
                        return
                    state["active"] += 1
                    phase = state["phase"]
                name = names[n % len(names)]
                n += 1
                start = time.perf_counter()
                error = None
                try:
                    c.execute(
                        "select set_config('role', 'authenticated', true),"
                        " set_config('request.jwt.claims', %s, true)",
                        (claims,),
                    )
                    c.execute(MW_CALLS[name], (MW_ROOM,))
                    c.commit()
                except psycopg.Error as exc:
                    c.rollback()
                    error = f"{phase} {name} {exc.sqlstate}"
                finally:
                    elapsed = (time.perf_counter() - start) * 1000
                    with gate:
                        state["active"] -= 1
                        calls.append((phase, name, elapsed))
                        if error:
                            errors[error] = errors.get(error, 0) + 1
                        gate.notify_all()

    def hold() -> None:
        with gate:
            state["paused"] = True
            while state["active"]:
                gate.wait()

    def release(phase: str) -> None:
        with gate:
            state["paused"], state["phase"] = False, phase
            gate.notify_all()

    day = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    columns = (
        "(room_id, user_id, host_time, member_time, time_difference, is_synced,"
        " sync_event_type, created_at)"
    )

    def expired_hours(first: int) -> list[str]:
        names = []
        for h in range(first, first + sizes.maintain_hours_per_round):
            start = day - timedelta(hours=h)
            name = "sync_states_p" + start.strftime("%Y%m%d%H")
            names.append(name)
            conn.execute(
                f"create table public.{name}"
                " (like public.sync_states including defaults including constraints)"
            )
            conn.execute(
                f"alter table public.sync_states attach partition public.{name}"
                f" for values from ('{start.isoformat()}') to"
                f" ('{(start + timedelta(hours=1)).isoformat()}')"
            )
            conn.execute(
                f"insert into public.{name} {columns}"
                " select %(room)s, 'mw' || (i %% 4), 100, 100, 0, true, 'heartbeat',"
                " %(start)s::timestamptz + (i::float8 * 3599 / %(rows)s) * interval '1 second'"
                " from generate_series(1, %(rows)s) as i",
                {"room": MW_ROOM, "start": start, "rows": sizes.maintain_rows_per_hour},
            )
        conn.execute("checkpoint")
        return names

    runs: list[float] = []
    slowest: dict[str, Any] = {}
    retired = left = retired_after = never = 0
    skipped: dict[str, int] = {}
    maintain_errors: dict[str, int] = {}
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(MW_CLIENTS)]
    mconn = psycopg.connect(url)
    maintain_pid = mconn.info.backend_pid
    try:
        hold()
        for th in threads:
            th.start()
        release("baseline")
        time.sleep(sizes.maintain_rounds * sizes.maintain_round_seconds)
        for r in range(sizes.maintain_rounds):
            hold()
            names = expired_hours(r * sizes.maintain_hours_per_round)
            release("maintain")
            end = time.perf_counter() + sizes.maintain_round_seconds
            while time.perf_counter() < end:
                start = time.perf_counter()
                try:
                    _as_member(mconn, "bench-maintenance", "service_role")
                    report = mconn.execute("select public.maintain()").fetchone()[0]  # type: ignore[index]
                    mconn.commit()
                except psycopg.Error as exc:
                    mconn.rollback()
                    key = str(exc.sqlstate)
                    maintain_errors[key] = maintain_errors.get(key, 0) + 1
                    continue
                runs.append((time.perf_counter() - start) * 1000)
                if runs[-1] >= slowest.get("ms", 0):
                    # What the slowest run did: its own report (counts per job, skips).
                    slowest = {"round": r, "run": len(runs), "ms": round(runs[-1], 3),
                               "report": report}  # fmt: skip
                for skip in report.get("skipped", []):
                    key = f"{skip.get('job')} {skip.get('step', '')} {skip.get('reason')}"
                    skipped[key] = skipped.get(key, 0) + 1
            present = (
                "select count(*) from pg_class where relnamespace = 'public'::regnamespace"
                " and relname = any(%s)"
            )
            attached = int(_one(conn, present, (names,)))
            retired += len(names) - attached
            left += attached
            # What the round left (maintain() takes the locks RPCs need only when they are free
            # at once): a few runs with no RPC in flight, not timed, retire it (detach, then drop).
            hold()
            for _ in range(3):
                _as_member(mconn, "bench-maintenance", "service_role")
                mconn.execute("select public.maintain()")
                mconn.commit()
            still = int(_one(conn, present, (names,)))
            retired_after += attached - still
            never += still
    finally:
        with gate:
            state["stop"] = True
            gate.notify_all()
        for th in threads:
            if th.is_alive():
                th.join()
        mconn.close()
        conn.execute(
            "update watchium_private.settings set value = %s"
            " where key = 'heartbeat_sample_interval'",
            (Jsonb(before),),
        )
    time.sleep(0.2)  # the log's last lines
    size1 = int(_one(conn, "select size from pg_stat_file('server.log')"))
    log = str(_one(conn, "select pg_read_file('server.log', %s, %s)", (size0, size1 - size0)))
    waits = [w for w in parse_lock_waits(log) if w["pid"] in rpc_pids]

    def by_maintain(w: dict[str, Any]) -> bool:
        queue = w["queue"]
        ahead = queue[: queue.index(w["pid"])] if w["pid"] in queue else queue
        return maintain_pid in w["holders"] or maintain_pid in ahead

    def relation(obj: str) -> str:
        match = re.match(r"relation (\d+) of database", obj)
        if not match:
            return obj
        name = _one(conn, "select %s::oid::regclass::text", (int(match.group(1)),))
        return f"relation {name}"

    blocked = [w for w in waits if by_maintain(w)]
    described = [
        {
            "mode": w["mode"],
            "object": relation(w["object"]),
            "waited_ms": w["waited_ms"],
            "maintain": "holds it" if maintain_pid in w["holders"] else "queued ahead",
            "statement": w["statement"][:200],
            "context": w["context"][:300],
        }
        for w in blocked
    ]
    phases = {
        phase: {
            "all": _percentiles([ms for p, _, ms in calls if p == phase]),
            "by_rpc": {
                name: _percentiles([ms for p, n, ms in calls if p == phase and n == name])
                for name in MW_CALLS
            },
        }
        for phase in ("baseline", "maintain")
    }
    base_p99 = phases["baseline"]["all"]["p99_ms"]
    maint_p99 = phases["maintain"]["all"]["p99_ms"]
    return {
        "clients": MW_CLIENTS,
        "rpcs": list(MW_CALLS),
        "seconds_per_phase": sizes.maintain_rounds * sizes.maintain_round_seconds,
        "rounds": sizes.maintain_rounds,
        "expired_partitions_per_round": sizes.maintain_hours_per_round,
        "rows_per_expired_partition": sizes.maintain_rows_per_hour,
        "expired_partitions_retired": retired,
        "expired_partitions_left": left,
        "expired_partitions_retired_after_round": retired_after,
        "expired_partitions_never_retired": never,
        "maintain_runs": len(runs),
        "maintain_median_ms": _median(runs) if runs else None,
        "maintain_max_ms": round(max(runs), 3) if runs else None,
        "maintain_errors": maintain_errors,
        "maintain_slowest_run": slowest,
        "maintain_skipped": skipped,
        "phases": phases,
        "p99_during_maintain_over_baseline": _ratio(maint_p99, base_p99)
        if maint_p99 and base_p99
        else None,
        "rpc_errors": errors,
        "rpc_lock_waits_logged": len(waits),
        "rpc_lock_waits_on_maintain": len(blocked),
        "rpc_lock_waits_queued_behind_maintain": sum(
            1 for d in described if d["maintain"] == "queued ahead"
        ),
        "rpc_lock_waits_maintain_holds": sum(1 for d in described if d["maintain"] == "holds it"),
        "rpc_lock_waits_on_maintain_by_lock": dict(
            sorted(
                Counter(
                    f"{d['mode']} on {d['object']} ({d['maintain']}): {d['statement'][:60]}"
                    for d in described
                ).items()
            )
        ),
        "rpc_lock_waits_on_maintain_max_ms": max((d["waited_ms"] for d in described), default=None),
        "rpc_lock_waits_on_maintain_detail": described[:20],
        "rpc_lock_waits_other": len(waits) - len(blocked),
    }


# ---------------------------------------------------------------------------------------------
# reading a room as a member (RLS) vs as service_role
# ---------------------------------------------------------------------------------------------
def bench_rls_read(conn: Conn, sizes: Sizes) -> dict[str, Any]:
    n_rooms = sizes.rls_rooms
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number,"
        " video_url, host_user_id, host_username)"
        " select 'rr' || lpad(r::text, 8, '0'), 'Bench', 'a1', 'Anime', 1,"
        " 'https://example.com/v', 'rr' || r || '_0', 'Host'"
        " from generate_series(1, %s) as r",
        (n_rooms,),
    )
    conn.execute(
        "insert into public.room_members (room_id, user_id, username, is_host)"
        " select 'rr' || lpad(r::text, 8, '0'), 'rr' || r || '_' || m, 'U', m = 0"
        " from generate_series(1, %s) as r, generate_series(0, 9) as m",
        (n_rooms,),
    )
    conn.execute(
        "insert into public.sync_states (room_id, user_id, host_time, member_time,"
        " time_difference, is_synced, sync_event_type)"
        " select 'rr' || lpad(r::text, 8, '0'), 'rr' || r || '_' || m, 100, 100, 0, true,"
        " 'heartbeat' from generate_series(1, %s) as r, generate_series(0, 9) as m",
        (n_rooms,),
    )
    conn.execute("vacuum analyze")
    reads = (
        "select * from public.room_members where room_id = %(room)s",
        "select * from public.sync_records where room_id = %(room)s"
        " order by created_at desc limit 50",
    )
    sample = [1 + (i * 7919) % n_rooms for i in range(200)]

    def read_all(as_member: bool) -> None:
        for r in sample:
            room = f"rr{r:08d}"
            with conn.transaction():
                if as_member:
                    _as_member(conn, f"rr{r}_3")
                else:
                    _as_member(conn, "service", role="service_role")
                for sql in reads:
                    got = conn.execute(sql, {"room": room}).fetchall()
                    assert got, f"no rows read from {room}"

    member: list[float] = []
    service: list[float] = []
    for i in range(sizes.rls_rounds + 1):
        m = _ms(lambda: read_all(True)) / len(sample)
        s = _ms(lambda: read_all(False)) / len(sample)
        if i:
            member.append(m)
            service.append(s)
    mm, sm = _median(member, 4), _median(service, 4)
    return {
        "rooms": n_rooms,
        "members_per_room": 10,
        "reads_per_round": len(sample),
        "rounds": sizes.rls_rounds,
        "member_ms": mm,
        "service_role_ms": sm,
        "member_over_service_role": _ratio(mm, sm),
    }


# ---------------------------------------------------------------------------------------------
# head against the released head (0.1.0), in the same run
# ---------------------------------------------------------------------------------------------
#: Highest speed ratio head / release that still counts as "within 10 %" slower.
BASELINE_TOLERANCE = 0.10


def released_version(changelog: Path = ROOT / "CHANGELOG.md") -> str:
    """The last released version's number (the first ``## [x.y.z]`` heading of the changelog)."""
    found = re.search(r"^## \[(\d+\.\d+\.\d+)\]", changelog.read_text(), flags=re.MULTILINE)
    return found.group(1) if found else "release"


@dataclass(frozen=True)
class BaselineCase:
    """One operation measured with pgbench on head and on the released head in the same run.

    ``script(side)`` returns the pgbench script for ``side`` ("head" or "release"), so an
    operation whose call changed since the release can state both calls. ``setup(conn, side)``
    prepares each database (idempotent; the same data on both sides). ``metric`` "tps": higher
    is better, ``scale`` turns transactions into operations (members per batched call);
    "latency": ms per transaction, lower is better. To add an operation, append a case to
    ``BASELINE_CASES``: the run measures it, and the targets gain "<what>, head vs <release>"
    (head's speed at least 0.9x the release's).
    """

    key: str
    what: str
    metric: str
    clients: int
    script: Callable[[str], str]
    setup: Callable[[Conn, str], None]
    scale: int = 1


def _setup_heartbeat_rooms(conn: Conn, _side: str) -> None:
    setup_heartbeat_rooms(conn)


BASELINE_ROOM_1000 = "bl00001000"


def _setup_room_of_1000(conn: Conn, side: str) -> None:
    if not _one(
        conn, "select count(*) from public.rooms where room_id = %s", (BASELINE_ROOM_1000,)
    ):
        make_room(conn, BASELINE_ROOM_1000, 1000, "bl1000_")
        if side == "head":
            # Every member reported an RTT (20 to 275 ms; revision 0023) and stays live for
            # the run: a play's scheduled start ranks them all (revision 0031).
            conn.execute(
                "update watchium_private.member_presence"
                " set rtt_ms = 20 + (hashtext(user_id) & 255),"
                " last_heartbeat = now() + interval '1 hour' where room_id = %s",
                (BASELINE_ROOM_1000,),
            )
        conn.execute("analyze")


BASELINE_QUEUE_ROOM = "bq00001000"


def _setup_queue_room_of_1000(conn: Conn, side: str) -> None:
    """A room of 1,000; on head it plays a queue item (revision 0013), so that each
    transaction of the script has an advance to make."""
    if not _one(
        conn, "select count(*) from public.rooms where room_id = %s", (BASELINE_QUEUE_ROOM,)
    ):
        make_room(conn, BASELINE_QUEUE_ROOM, 1000, "bq1000_")
        if side == "head":
            item = _one(
                conn,
                "insert into public.room_queue (room_id, position, anime_id, anime_title,"
                " episode_number, video_url, duration, added_by, added_by_username)"
                " values (%s, 0, 'a1', 'Anime', 2, 'https://example.com/v2', 60, 'bq1000_1',"
                " 'U1') returning item_id",
                (BASELINE_QUEUE_ROOM,),
            )
            conn.execute(
                "update public.rooms set queue_item_id = %s, queue_advance_after = 62"
                " where room_id = %s",
                (item, BASELINE_QUEUE_ROOM),
            )
        conn.execute("analyze")


def auto_advance_script(side: str) -> str:
    """Head: one automatic advance in the queue room of 1,000 per transaction: the item after
    the current one is queued, the room's reference is set past the current item's end, and
    ``auto_advance_queue`` (what a heartbeat or ``maintain()`` calls) advances, resets the
    reference, opens the anchor and emits the events. The queueing and the update are part of
    the measured transaction, so head pays more than the advance alone. The release has no
    queue; its side is a host control in a room of 1,000 (the operation an advance replaces:
    a new playback reference and a playback event)."""
    room = BASELINE_QUEUE_ROOM
    if side != "head":
        return host_control_scripts(room, "bq1000_0")["ours"]
    return (
        "begin;\n"
        "insert into public.room_queue (room_id, position, anime_id, anime_title, episode_number,"
        f" video_url, duration, added_by, added_by_username) values ('{room}', 1, 'a1', 'Anime',"
        " 2, 'https://example.com/v2', 60, 'bq1000_1', 'U1');\n"
        "update public.rooms set is_playing = true, current_playback_time = 0,"
        f" playback_updated_at = now() - interval '1 hour' where room_id = '{room}';\n"
        f"select watchium_private.auto_advance_queue('{room}');\n"
        "commit;\n"
    )


def _setup_co_host_room_of_1000(conn: Conn, side: str) -> None:
    """The room of 1,000 with member bl1000_1 a co-host on head (0.1.0 has no roles: its side
    measures the host's control, what a co-host's replaces)."""
    _setup_room_of_1000(conn, side)
    if side == "head":
        conn.execute(
            "update public.room_members set role = 'co_host'"
            " where room_id = %s and user_id = 'bl1000_1' and role <> 'co_host'",
            (BASELINE_ROOM_1000,),
        )


BASELINE_CASES: list[BaselineCase] = [
    BaselineCase(
        "single_heartbeat",
        "single heartbeat (8 clients, 8 rooms)",
        "tps",
        8,
        lambda _side: heartbeat_script(HB_ROOMS),
        _setup_heartbeat_rooms,
    ),
    BaselineCase(
        "batched_heartbeat",
        "batched heartbeats (50 per call, 4 clients)",
        "tps",
        4,
        lambda _side: batch_script(),
        _setup_heartbeat_rooms,
        scale=HB_MEMBERS,
    ),
    # 0024: the same heartbeats carrying a send time, an RTT and the episode on head (the
    # release takes none of them): the cost of latency-aware drift itself.
    BaselineCase(
        "single_heartbeat_latency",
        "single heartbeat with send time, RTT and episode (8 clients, 8 rooms)",
        "tps",
        8,
        lambda side: heartbeat_script(
            HB_ROOMS, extra_args=HB_LATENCY_ARGS if side == "head" else ""
        ),
        _setup_heartbeat_rooms,
    ),
    BaselineCase(
        "batched_heartbeat_latency",
        "batched heartbeats with send times, RTTs and episodes (50 per call, 4 clients)",
        "tps",
        4,
        lambda side: batch_script(latency=side == "head"),
        _setup_heartbeat_rooms,
        scale=HB_MEMBERS,
    ),
    BaselineCase(
        "host_control_1000",
        "host control in a room of 1,000",
        "latency",
        1,
        lambda _side: host_control_scripts(BASELINE_ROOM_1000, "bl1000_0")["ours"],
        _setup_room_of_1000,
    ),
    BaselineCase(
        "queue_auto_advance_1000",
        "automatic queue advance in a room of 1,000 (0.1.0: a host control there)",
        "latency",
        1,
        auto_advance_script,
        _setup_queue_room_of_1000,
    ),
    BaselineCase(
        "co_host_control_1000",
        "co-host control in a room of 1,000 (0.1.0: the host's control)",
        "latency",
        1,
        lambda side: host_control_scripts(
            BASELINE_ROOM_1000, "bl1000_1" if side == "head" else "bl1000_0"
        )["ours"],
        _setup_co_host_room_of_1000,
    ),
]


def bench_release_baseline(
    urls: dict[str, str], sizes: Sizes, workdir: Path, cases: list[str] | None = None
) -> dict[str, Any]:
    """Each case on head and on the released head, sides alternating (which one goes first
    alternates by round), ``baseline_rounds`` rounds of ``baseline_seconds``; medians.
    ``speed_ratio`` is head's speed over the release's (TPS head / release, or ms release /
    head): 1.0 the same, below 0.9 more than 10 % slower."""
    selected = [c for c in BASELINE_CASES if cases is None or c.key in cases]
    for side, url in urls.items():
        with psycopg.connect(url, autocommit=True) as conn:
            for case in selected:
                case.setup(conn, side)
    out: dict[str, Any] = {
        "release": released_version(),
        "revisions": {side: migrate.current_revision(url) for side, url in urls.items()},
        "seconds": sizes.baseline_seconds,
        "rounds": sizes.baseline_rounds,
        "cases": {},
    }
    for case in selected:
        values: dict[str, list[float]] = {"head": [], "release": []}
        args = ["-c", str(case.clients), "-j", str(min(2, case.clients))]
        args += ["-T", str(sizes.baseline_seconds)]
        for i in range(sizes.baseline_rounds):
            order = ("head", "release") if i % 2 == 0 else ("release", "head")
            for side in order:
                script = case.script(side)
                if case.metric == "tps":
                    values[side].append(pgbench(urls[side], workdir, args, script) * case.scale)
                else:
                    values[side].append(pgbench_latency_ms(urls[side], workdir, args, script))
        head, release = _median(values["head"]), _median(values["release"])
        ratio = _ratio(head, release) if case.metric == "tps" else _ratio(release, head)
        out["cases"][case.key] = {
            "what": case.what,
            "metric": "operations/s" if case.metric == "tps" else "ms",
            "head": head,
            "release": release,
            "speed_ratio": ratio,
        }
    return out


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------
def _get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and met / missed / not measured (informational
    rows: a figure without a threshold)."""
    hc = _get(results, "host_control", "by_members", "1000") or {}
    hc10 = _get(results, "host_control", "by_members", "10") or {}
    rl = _get(results, "rate_limit") or {}
    rl_rows = rl.get("by_rows", {})
    largest = rl_rows.get(max(rl_rows, key=int)) if rl_rows else None
    hb = _get(results, "heartbeat_tps") or {}
    batch = _get(results, "heartbeat_batch") or {}
    costs = _get(results, "heartbeat_costs") or {}
    ours_costs = costs.get("ours", {})
    latency_costs = costs.get("ours_latency", {})
    expiry = _get(results, "expiry") or {}
    rls = _get(results, "rls_read") or {}
    mw = _get(results, "maintain_waits") or {}
    gw_ms = (_get(results, "group_wait") or {}).get("ms", {})
    gw_calls = [
        v for k, v in gw_ms.items() if k not in ("deadlines_999_blockers", "host_control_reference")
    ]
    gw_ref = gw_ms.get("host_control_reference")
    gw_ratio = _ratio(max(gw_calls), gw_ref) if gw_calls and gw_ref else None

    def t(
        what: str, target: str, measured: Any, ok: bool | None, info: bool = False
    ) -> dict[str, Any]:
        status = "not measured" if ok is None else ("met" if ok else "missed")
        if info and measured is not None:
            status = "informational"
        return {"what": what, "target": target, "measured": measured, "status": status}

    def cmp(value: Any, op: Callable[[float], bool]) -> bool | None:
        return None if value is None else op(float(value))

    hb8 = hb.get("ours_8_rooms_over_simple_update")
    hb1 = hb.get("ours_one_room_over_simple_update")
    baseline = _get(results, "release_baseline") or {}
    release = baseline.get("release") or released_version()
    measured_cases = baseline.get("cases", {})
    floor = round(1 - BASELINE_TOLERANCE, 3)
    baseline_targets = [
        t(
            f"{case.what}, head vs {release}: speed ratio",
            f">= {floor} (within {BASELINE_TOLERANCE:.0%})",
            measured_cases.get(case.key, {}).get("speed_ratio"),
            cmp(measured_cases.get(case.key, {}).get("speed_ratio"), lambda v: v >= floor),
        )
        for case in BASELINE_CASES
    ]
    targets = [
        t(
            "host control at N = 1000: speedup vs seed",
            ">= 8x",
            hc.get("speedup_vs_seed"),
            cmp(hc.get("speedup_vs_seed"), lambda v: v >= 8),
        ),
        t(
            "host control in a room of 10: speedup vs seed",
            ">= 1.0x",
            hc10.get("speedup_vs_seed"),
            cmp(hc10.get("speedup_vs_seed"), lambda v: v >= 1.0),
        ),
        t(
            "host control at N = 1000: ours / floor",
            "<= 3x",
            hc.get("ours_over_floor"),
            cmp(hc.get("ours_over_floor"), lambda v: v <= 3),
        ),
        t(
            "check_rate_limit: largest / smallest history (ours)",
            "<= 1.3 (5M vs 10k)",
            rl.get("ours_largest_over_smallest"),
            cmp(rl.get("ours_largest_over_smallest"), lambda v: v <= 1.3),
        ),
        t(
            "check_rate_limit at the largest history: speedup vs seed",
            ">= 50x (at 5M)",
            largest.get("speedup_vs_seed") if largest else None,
            cmp(largest.get("speedup_vs_seed") if largest else None, lambda v: v >= 50),
        ),
        t(
            "single heartbeat, 8 clients, 8 rooms / simple-update TPS",
            ">= 0.9",
            hb8,
            cmp(hb8, lambda v: v >= 0.9),
        ),
        t(
            "single heartbeat, 8 clients, one room of 50 / simple-update TPS",
            ">= 0.9",
            hb1,
            cmp(hb1, lambda v: v >= 0.9),
        ),
        t(
            "single heartbeat, 8 rooms: ours / seed in the same transaction shape",
            ">= 1.0",
            hb.get("ours_8_rooms_over_seed_same_shape"),
            cmp(hb.get("ours_8_rooms_over_seed_same_shape"), lambda v: v >= 1.0),
        ),
        t(
            "batched heartbeats (50 per call, 4 clients): member heartbeats/s",
            ">= 50,000",
            batch.get("ours_member_heartbeats_per_s"),
            cmp(batch.get("ours_member_heartbeats_per_s"), lambda v: v >= 50_000),
        ),
        t(
            "batched heartbeats: ours / floor",
            ">= 0.5",
            batch.get("ours_over_floor"),
            cmp(batch.get("ours_over_floor"), lambda v: v >= 0.5),
        ),
        t(
            "HOT share of presence updates",
            ">= 95 %",
            ours_costs.get("hot_share"),
            cmp(ours_costs.get("hot_share"), lambda v: v >= 0.95),
        ),
        t(
            "WAL bytes per heartbeat: ours / seed",
            "<= 0.5",
            costs.get("wal_ours_over_seed"),
            cmp(costs.get("wal_ours_over_seed"), lambda v: v <= 0.5),
        ),
        t(
            "published change rows per heartbeat",
            "<= 0.05",
            ours_costs.get("published_change_rows_per_heartbeat"),
            cmp(ours_costs.get("published_change_rows_per_heartbeat"), lambda v: v <= 0.05),
        ),
        t(
            "HOT share of presence updates, heartbeats with RTT",
            ">= 95 %",
            latency_costs.get("hot_share"),
            cmp(latency_costs.get("hot_share"), lambda v: v >= 0.95),
        ),
        t(
            "published change rows per heartbeat, heartbeats with RTT",
            "<= 0.05",
            latency_costs.get("published_change_rows_per_heartbeat"),
            cmp(latency_costs.get("published_change_rows_per_heartbeat"), lambda v: v <= 0.05),
        ),
        t(
            "expiring an hour of history, full (median)",
            "<= 10 ms",
            expiry.get("ours_hour_full_median_ms"),
            cmp(expiry.get("ours_hour_full_median_ms"), lambda v: v <= 10),
        ),
        t(
            "expiring an hour of history, empty (median)",
            "<= 10 ms",
            expiry.get("ours_hour_empty_median_ms"),
            cmp(expiry.get("ours_hour_empty_median_ms"), lambda v: v <= 10),
        ),
        t(
            "RPC calls that waited on a lock held by maintain()",
            "0",
            mw.get("rpc_lock_waits_on_maintain"),
            cmp(mw.get("rpc_lock_waits_on_maintain"), lambda v: v == 0),
        ),
        t(
            "RPC calls that queued behind a lock request of maintain()",
            "0",
            mw.get("rpc_lock_waits_queued_behind_maintain"),
            cmp(mw.get("rpc_lock_waits_queued_behind_maintain"), lambda v: v == 0),
        ),
        t(
            "RPC latency p99 while maintain() runs / without",
            "informational",
            mw.get("p99_during_maintain_over_baseline"),
            None,
            info=True,
        ),
        t(
            "reading a room: member (RLS) / service_role",
            "<= 1.5x",
            rls.get("member_over_service_role"),
            cmp(rls.get("member_over_service_role"), lambda v: v <= 1.5),
        ),
        t(
            "slowest waiting or ready-check transition in a room of 1,000 / a host control "
            "timed the same way",
            "<= 1.5x",
            gw_ratio,
            cmp(gw_ratio, lambda v: v <= 1.5),
        ),
        t(
            "999 blockers' deadlines applied at once in a room of 1,000 (median)",
            "<= 50 ms",
            gw_ms.get("deadlines_999_blockers"),
            cmp(gw_ms.get("deadlines_999_blockers"), lambda v: v <= 50),
        ),
        t(
            "MultiXact ids consumed by heartbeats in one hot room",
            "0",
            ours_costs.get("multixact_ids_consumed"),
            cmp(ours_costs.get("multixact_ids_consumed"), lambda v: v == 0),
        ),
    ]
    return [*targets, *baseline_targets]


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(results: dict[str, Any], charts: list[str]) -> str:
    m = results["machine"]
    out = [
        "# Benchmarks",
        "",
        "Generated by `python -m watchium_db.devtools.bench"
        + (" --quick" if results["quick"] else "")
        + f"` on {results['started_at']}; raw figures in `bench/results/latest.json`. "
        "Do not edit by hand: run the command again.",
        "",
        "Every benchmark runs in the same run on a fresh throw-away database: ours, the seed's "
        "reference SQL (`bench/seed_reference.sql`, schema `seed_ref`, written from the seed "
        "document) and, where one exists, the floor (the least work that could do the job). "
        "Figures are medians over repeated rounds in which the sides alternate. The machine is "
        "shared and noisy: **ratios within this run are the figures that count**; absolute times "
        "are context.",
        "",
        "## Machine",
        "",
        _table(
            ["cores", "PostgreSQL", "fsync", "synchronous_commit", "full_page_writes", "wal_level"],
            [
                [
                    m["cores"],
                    m["postgres"],
                    m["fsync"],
                    m["synchronous_commit"],
                    m["full_page_writes"],
                    m["wal_level"],
                ]
            ],
        ),
        "",
        "## Targets",
        "",
        _table(
            ["what", "target", "measured", "status"],
            [[t["what"], t["target"], t["measured"], t["status"]] for t in results["targets"]],
        ),
        "",
    ]
    hc = results.get("host_control")
    if hc:
        out += [
            "## Host control against room size",
            "",
            "Ours: `public.change_playback_state` as the host (claims and role set per "
            "transaction, room lock, host check, a sync record for every member stored as one "
            "snapshot row, one event). Seed: `update rooms` plus its PL/pgSQL loop "
            "`bulk_sync_update`. Floor: the same per-member history rows inserted into an "
            "unlogged table without indexes.",
            "",
            "Steady (the targets' figures): pgbench repeats one side's control back to back for "
            f"{hc.get('steady_seconds', '-')} s, the sides alternating; ms per control, median "
            f"of {hc.get('steady_rounds', '-')} rounds. Interleaved: single calls from Python, "
            f"ours, the seed's and the floor's in turn, median of {hc['rounds']} rounds; each "
            "call starts cold after the others (see the analysis below).",
            "",
            _table(
                [
                    "members",
                    "ours ms",
                    "seed ms",
                    "floor ms",
                    "seed / ours",
                    "ours / floor",
                    "interleaved: ours ms",
                    "seed ms",
                    "seed / ours",
                ],
                [
                    [
                        int(n),
                        r["ours_ms"],
                        r["seed_ms"],
                        r["floor_ms"],
                        r["speedup_vs_seed"],
                        r["ours_over_floor"],
                        (r.get("interleaved") or {}).get("ours_ms"),
                        (r.get("interleaved") or {}).get("seed_ms"),
                        (r.get("interleaved") or {}).get("speedup_vs_seed"),
                    ]
                    for n, r in hc["by_members"].items()
                ],
            ),
            "",
        ]
    rl = results.get("rate_limit")
    if rl:
        out += [
            "## check_rate_limit against history size",
            "",
            "Ours upserts one counter row; the seed counts the user's rows in `sync_states` "
            f"(with an index on (user_id, created_at)). {rl['calls_per_round']} calls per round "
            f"in a server-side loop, 100 users, median of {rl['rounds']} rounds, ms per call.",
            "",
            _table(
                ["history rows", "ours ms", "seed ms", "seed / ours"],
                [
                    [int(n), r["ours_ms"], r["seed_ms"], r["speedup_vs_seed"]]
                    for n, r in rl["by_rows"].items()
                ],
            ),
            "",
            f"Largest / smallest history: ours {_fmt(rl['ours_largest_over_smallest'])}, "
            f"seed {_fmt(rl['seed_largest_over_smallest'])}.",
            "",
        ]
    hb = results.get("heartbeat_tps")
    if hb:
        out += [
            "## Single heartbeats (pgbench)",
            "",
            f"{hb['clients']} clients, {hb['seconds']} s per run, median of {hb['rounds']} "
            "rounds. Ours: PostgREST's transaction shape (one statement sets the role and the "
            "member's claims, then `public.record_heartbeat`). RPC floor: the same transaction "
            "calling a function that only updates the member's presence row "
            "(`seed_ref.floor_heartbeat`). Seed: its heartbeat (update the member row, whose "
            "trigger reads the room, and insert a history row), as the owner without RLS, "
            "autocommitted. Seed, same shape: the seed's heartbeat called as a client calls an "
            "RPC (PostgREST's transaction: role `authenticated` and claims, then the call; "
            "Supabase's default grants on the seed's tables, its RLS policies left out).",
            "",
            _table(["workload", "TPS"], [[k, v] for k, v in hb["tps"].items()]),
            "",
            f"Ours / simple-update: 8 rooms {_fmt(hb['ours_8_rooms_over_simple_update'])}, "
            f"one room of 50 {_fmt(hb['ours_one_room_over_simple_update'])}; "
            f"RPC floor / simple-update {_fmt(hb.get('rpc_floor_over_simple_update'))}; "
            f"ours / RPC floor {_fmt(hb.get('ours_8_rooms_over_rpc_floor'))}; "
            f"seed / simple-update {_fmt(hb['seed_8_rooms_over_simple_update'])}; "
            f"ours / seed in the same shape {_fmt(hb.get('ours_8_rooms_over_seed_same_shape'))}.",
            "",
        ]
    batch = results.get("heartbeat_batch")
    if batch:
        out += [
            "## Batched heartbeats (pgbench)",
            "",
            f"`public.record_heartbeats` as service_role with {batch['members_per_call']} members "
            f"per call (three arrays), {batch['clients']} clients; floor: one bare set-based "
            "update of the same presence rows, autocommitted.",
            "",
            _table(
                ["", "member heartbeats/s"],
                [
                    ["ours", batch["ours_member_heartbeats_per_s"]],
                    ["floor", batch["floor_member_heartbeats_per_s"]],
                ],
            ),
            "",
            f"Ours / floor: {_fmt(batch['ours_over_floor'])}.",
            "",
        ]
    costs = results.get("heartbeat_costs")
    if costs:
        o, s = costs["ours"], costs["seed"]
        ol = costs.get("ours_latency")
        out += [
            "## Cost per heartbeat (one hot room of 50, 8 clients)",
            "",
            "WAL from `pg_current_wal_lsn()` (after a checkpoint), published change rows from "
            "logical decoding (`test_decoding`): every change of a relation the publication "
            "`supabase_realtime` emits, partitions under their own names (ours; "
            "`publish_via_partition_root` is false), and every change of the seed's tables "
            "(the seed publishes rooms, room_members and sync_states). History is sampled at "
            "the production rate: `heartbeat_sample_interval` scaled to the run's pace so that "
            f"a member writes one sample per {costs['heartbeats_per_sample_in_production']} "
            f"heartbeats ({_fmt(costs['sample_interval_seconds'])} s here; 60 s at one "
            "heartbeat every 3 s in production). MultiXact ids from `pg_control_checkpoint()`, "
            "HOT share from `pg_stat_user_tables` of the presence table.",
            "",
            _table(
                ["", "heartbeats", "WAL bytes / hb", "published rows / hb", "MultiXact ids", "HOT"],
                [
                    [
                        name,
                        r["heartbeats"],
                        r["wal_bytes_per_heartbeat"],
                        r["published_change_rows_per_heartbeat"],
                        r["multixact_ids_consumed"],
                        r["hot_share"],
                    ]
                    for name, r in (
                        ("ours", o),
                        *((("ours, with send time, RTT and episode", ol),) if ol else ()),
                        ("seed", s),
                    )
                ],
            ),
            "",
            f"History samples per heartbeat (ours): {_fmt(costs['history_samples_per_heartbeat'])}"
            f". Published change rows of ours by relation: "
            + (
                ", ".join(f"`{k}` {v}" for k, v in o["published_change_rows_by_relation"].items())
                or "none"
            )
            + "; all decoded changes of ours by relation: "
            + (
                ", ".join(f"`{k}` {v}" for k, v in o["decoded_change_rows_by_relation"].items())
                or "none"
            )
            + ".",
            "",
        ]
        if ol:
            out += [
                "With a send time, an RTT and the room's episode (`p_client_time`, `p_rtt_ms`, "
                "`p_episode_number`), sampled at the same production rate "
                f"({_fmt(costs.get('sample_interval_seconds_latency'))} s here): history "
                "samples per heartbeat "
                f"{_fmt(costs.get('history_samples_per_heartbeat_latency'))}; published change "
                "rows by relation: "
                + (
                    ", ".join(
                        f"`{k}` {v}" for k, v in ol["published_change_rows_by_relation"].items()
                    )
                    or "none"
                )
                + "; all decoded changes by relation: "
                + (
                    ", ".join(
                        f"`{k}` {v}" for k, v in ol["decoded_change_rows_by_relation"].items()
                    )
                    or "none"
                )
                + ".",
                "",
            ]
    ex = results.get("expiry")
    if ex:
        out += [
            "## Expiring history",
            "",
            f"{ex['rows']:,} rows spread over one past day ({ex['rows_per_hour']:,} an hour), "
            "in hourly partitions. Ours: each hour retired as maintenance retires it "
            "(`alter table … detach partition`, then `drop table`), timed one hour at a time, "
            "with the rows and with the same partitions empty (the DDL's own cost). Seed: "
            "`delete from sync_states where created_at < …` for the whole day, and the "
            "`vacuum` that reclaims its dead rows afterwards. Medians over "
            f"{ex['rounds']} rounds.",
            "",
            _table(
                [
                    "an hour, full: median / max ms",
                    "an hour, empty: median / max ms",
                    "ours, the day ms",
                    "seed DELETE ms",
                    "seed VACUUM ms",
                    "seed DELETE / ours",
                ],
                [
                    [
                        f"{_fmt(ex['ours_hour_full_median_ms'])} / "
                        f"{_fmt(ex['ours_hour_full_max_ms'])}",
                        f"{_fmt(ex['ours_hour_empty_median_ms'])} / "
                        f"{_fmt(ex['ours_hour_empty_max_ms'])}",
                        ex["ours_day_ms"],
                        ex["seed_delete_ms"],
                        ex.get("seed_vacuum_after_delete_ms"),
                        ex["speedup_vs_seed"],
                    ]
                ],
            ),
            "",
        ]
    mw = results.get("maintain_waits")
    if mw:
        ph = mw["phases"]
        out += [
            "## maintain() beside member RPCs",
            "",
            f"{mw['clients']} members of one room, each on its own connection, call "
            + ", ".join(f"`{n}`" for n in mw["rpcs"])
            + " in turn (PostgREST's transaction: role and claims, the call, commit; "
            "`read_sync_records` reads the history view), for "
            f"{mw['seconds_per_phase']} s without maintenance, then {mw['seconds_per_phase']} s "
            "while one more connection runs `public.maintain()` back to back as service_role. "
            f"Before each of the {mw['rounds']} rounds, with no RPC in flight, "
            f"{mw['expired_partitions_per_round']} filled history partitions two days old "
            f"({mw['rows_per_expired_partition']:,} rows each) are attached, so that maintain() "
            "retires partitions (DETACH, then DROP in a later run) when it can; between rounds, "
            "with no RPC in flight, three more runs (not timed) retire what a round left. "
            "Heartbeats write history samples "
            "(`heartbeat_sample_interval` 0.5 s). Lock waits are the server's own record: the "
            "RPC connections set `log_lock_waits` with `deadlock_timeout = 1ms`, so every wait "
            "of 1 ms or more is logged with the lock, its holders and the queue; a wait counts "
            "against maintain() when its backend holds the lock or queues for it ahead of the "
            "RPC. Latencies client-side, per call.",
            "",
            _table(
                ["", "calls", "p50 ms", "p99 ms", "max ms"],
                [
                    [label, r["calls"], r["p50_ms"], r["p99_ms"], r["max_ms"]]
                    for label, r in (
                        ("without maintain()", ph["baseline"]["all"]),
                        ("while maintain() runs", ph["maintain"]["all"]),
                    )
                ],
            ),
            "",
            _table(
                ["RPC", "p99 ms without", "p99 ms while maintain() runs"],
                [
                    [
                        f"`{name}`",
                        ph["baseline"]["by_rpc"][name]["p99_ms"],
                        ph["maintain"]["by_rpc"][name]["p99_ms"],
                    ]
                    for name in mw["rpcs"]
                ],
            ),
            "",
            f"maintain(): {mw['maintain_runs']} runs, median {_fmt(mw['maintain_median_ms'])} "
            f"ms, max {_fmt(mw['maintain_max_ms'])} ms; {mw['expired_partitions_retired']} "
            f"expired partitions retired beside the RPCs, {mw['expired_partitions_left']} left "
            "(the parent was never free at once), of which "
            f"{mw.get('expired_partitions_retired_after_round', '—')} retired by the runs "
            "between rounds (no RPC in flight) and "
            f"{mw.get('expired_partitions_never_retired', '—')} not at all; steps skipped: "
            + (", ".join(f"{k} {v}" for k, v in mw["maintain_skipped"].items()) or "none")
            + ". RPC errors: "
            + (", ".join(f"{k} {v}" for k, v in mw["rpc_errors"].items()) or "none")
            + f". RPC lock waits logged: {mw['rpc_lock_waits_logged']}, on maintain() "
            f"{mw['rpc_lock_waits_on_maintain']} (longest "
            f"{_fmt(mw['rpc_lock_waits_on_maintain_max_ms'])} ms; queued behind its request: "
            f"{mw.get('rpc_lock_waits_queued_behind_maintain', '—')}, while it held the lock: "
            f"{mw.get('rpc_lock_waits_maintain_holds', '—')})"
            + (
                ": "
                + "; ".join(
                    f"{k}: {v}" for k, v in mw["rpc_lock_waits_on_maintain_by_lock"].items()
                )
                if mw["rpc_lock_waits_on_maintain_by_lock"]
                else ""
            )
            + ".",
            "",
        ]
    rls = results.get("rls_read")
    if rls:
        out += [
            "## Reading a room: member with RLS vs service_role",
            "",
            f"{rls['rooms']:,} rooms x {rls['members_per_room']} members; a transaction "
            "reads one room's members and its latest sync history, "
            f"{rls['reads_per_round']} rooms per round, median of {rls['rounds']} rounds, "
            "ms per transaction (client-side, claims and role included).",
            "",
            _table(
                ["member ms", "service_role ms", "member / service_role"],
                [[rls["member_ms"], rls["service_role_ms"], rls["member_over_service_role"]]],
            ),
            "",
        ]
    gw = results.get("group_wait")
    if gw:
        labels = {
            "wait_start": "a member buffers: the playing room waits",
            "second_blocker": "a second member buffers",
            "ready_one_left": "a blocker is ready, one still blocks",
            "resume": "the last blocker is ready: the room resumes (scheduled start)",
            "ready_check_start": "the host starts a ready check",
            "set_ready": "a member answers ready",
            "ready_check_complete": "the answer that completes the check (playback starts)",
            "deadlines_999_blockers": "999 blockers' deadlines applied at once, room resumes",
            "host_control_reference": "reference: a host control (change_playback_state)",
        }
        out += [
            f"## Group wait and ready check in a room of {gw['members']:,}",
            "",
            "Each transition as one call (`report_playback_status`, `start_ready_check`, "
            "`set_ready` as the member, claims and role per transaction; the deadline sweep is "
            "`watchium_private.apply_sync_deadlines`), every member having loaded once; "
            f"median of {gw['rounds']} rounds, ms per call, client-side.",
            "",
            _table(["transition", "ms"], [[labels.get(k, k), v] for k, v in gw["ms"].items()]),
            "",
        ]
    bl = results.get("release_baseline")
    if bl:
        out += [
            f"## Head against {bl['release']} (the released head), same run",
            "",
            f"Two fresh databases on the same server, migrated the same way: head "
            f"(revision {bl['revisions'].get('head')}) and the last release "
            f"(revision {bl['revisions'].get('release')}, "
            "`release_checksums.released_head()`), the same data and benchmark settings. "
            f"pgbench runs each operation on one side for {bl['seconds']} s, the sides "
            f"alternating (which goes first alternates by round), median of {bl['rounds']} "
            "rounds. Speed ratio: head's speed over the release's (operations/s head / release, "
            "or ms release / head); below 0.9 head is more than 10 % slower.",
            "",
            _table(
                ["operation", "unit", "head", bl["release"], "speed ratio"],
                [
                    [c["what"], c["metric"], c["head"], c["release"], c["speed_ratio"]]
                    for c in bl["cases"].values()
                ],
            ),
            "",
        ]
    if charts:
        out += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    else:
        out += ["Charts were not drawn (install the `bench` extra: matplotlib).", ""]
    if ANALYSIS.exists():
        out += [ANALYSIS.read_text().rstrip(), ""]
    if results.get("errors"):
        out += ["## Errors", ""]
        out += [f"- `{k}`: {v}" for k, v in results["errors"].items()] + [""]
    return "\n".join(out)


def draw_charts(results: dict[str, Any], directory: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    drawn: list[str] = []
    hc = results.get("host_control")
    if hc:
        sizes = [int(n) for n in hc["by_members"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in (("ours_ms", "ours"), ("seed_ms", "seed loop"), ("floor_ms", "floor")):
            ax.plot(sizes, [r[key] for r in hc["by_members"].values()], marker="o", label=label)
        ax.set(xscale="log", yscale="log", xlabel="room members", ylabel="ms per host control")
        ax.set_title("Host control latency against room size")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "bench_host_control.png", dpi=100)
        plt.close(fig)
        drawn.append("bench_host_control.png")
    rl = results.get("rate_limit")
    if rl:
        sizes = [int(n) for n in rl["by_rows"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in (("ours_ms", "ours (counter)"), ("seed_ms", "seed (count)")):
            ax.plot(sizes, [r[key] for r in rl["by_rows"].values()], marker="o", label=label)
        ax.set(xscale="log", yscale="log", xlabel="history rows", ylabel="ms per call")
        ax.set_title("check_rate_limit cost against history size")
        ax.legend()
        fig.tight_layout()
        fig.savefig(directory / "bench_rate_limit.png", dpi=100)
        plt.close(fig)
        drawn.append("bench_rate_limit.png")
    return drawn


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------
def run(
    quick: bool = False,
    only: list[str] | None = None,
    results_path: Path = RESULTS,
    markdown_path: Path = MARKDOWN,
    log: Callable[[str], None] = print,
    baseline_cases: list[str] | None = None,
) -> dict[str, Any]:
    """Run the benchmarks (all, or ``only``) and write the JSON, Markdown and charts.
    ``baseline_cases`` limits ``release_baseline`` to those cases (keys of BASELINE_CASES)."""
    selected = list(only or BENCHMARKS)
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    known_cases = [c.key for c in BASELINE_CASES]
    unknown = sorted(set(baseline_cases or ()) - set(known_cases))
    if unknown:
        raise ValueError(f"unknown baseline case(s) {unknown}; choose from {known_cases}")
    sizes = Sizes.for_run(quick)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "quick": quick,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "benchmarks": selected,
        "errors": {},
    }
    with durable_server() as server, tempfile.TemporaryDirectory() as workdir:
        url = prepare_database(server)
        with psycopg.connect(url, autocommit=True) as conn:
            results["machine"] = machine_info(conn)
            steps: dict[str, Callable[[], dict[str, Any]]] = {
                "host_control": lambda: bench_host_control(conn, url, sizes, Path(workdir)),
                "rate_limit": lambda: bench_rate_limit(conn, sizes),
                "heartbeat_tps": lambda: bench_heartbeat_tps(conn, url, sizes, Path(workdir)),
                "heartbeat_batch": lambda: bench_heartbeat_batch(conn, url, sizes, Path(workdir)),
                "heartbeat_costs": lambda: bench_heartbeat_costs(conn, url, sizes, Path(workdir)),
                "expiry": lambda: bench_expiry(conn, sizes),
                "maintain_waits": lambda: bench_maintain_waits(conn, url, sizes),
                "rls_read": lambda: bench_rls_read(conn, sizes),
                "group_wait": lambda: bench_group_wait(conn, sizes),
                "release_baseline": lambda: bench_release_baseline(
                    baseline_databases(server), sizes, Path(workdir), baseline_cases
                ),
            }
            for name in BENCHMARKS:
                if name not in selected:
                    continue
                t0 = time.perf_counter()
                log(f"bench: {name} …")
                try:
                    results[name] = steps[name]()
                except Exception as exc:  # one failing benchmark must not hide the others
                    results["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.rollback()
                log(f"bench: {name} done in {time.perf_counter() - t0:.1f} s")
    results["targets"] = evaluate_targets(results)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_docs(results, markdown_path)
    return results


def write_docs(results: dict[str, Any], markdown_path: Path = MARKDOWN) -> None:
    """The Markdown and charts from ``results`` (also: re-render from a saved JSON file)."""
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    charts = draw_charts(results, markdown_path.parent)
    markdown_path.write_text(render_markdown(results, charts))


def main(argv: list[str] | None = None) -> int:
    """``python -m watchium_db.devtools.bench`` (``make bench``)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m watchium_db.devtools.bench",
        description="Run the benchmarks against the seed's reference SQL on a fresh server.",
        epilog=(
            "A full run writes bench/results/latest.json, docs/benchmarks.md and charts in docs/.\n"
            "A partial run (--quick or --only) writes bench/results/partial/ instead, so it never\n"
            "replaces the full report; --out DIR writes anywhere.\n\n"
            "examples:\n  make bench\n  python -m watchium_db.devtools.bench --quick\n"
            "  python -m watchium_db.devtools.bench --only host_control rate_limit --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: about two minutes")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument(
        "--baseline-case",
        action="append",
        metavar="KEY",
        help="with release_baseline: measure only this case (repeatable): "
        + ", ".join(c.key for c in BASELINE_CASES),
    )
    parser.add_argument("--json", action="store_true", help="print the JSON results for scripts")
    parser.add_argument(
        "--out", metavar="DIR", help="write results.json, benchmarks.md and charts to DIR"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite docs/benchmarks.md and charts from bench/results/latest.json",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        write_docs(json.loads(RESULTS.read_text()))
        print(f"wrote {MARKDOWN}")
        return 0
    results_path, markdown_path = output_paths(
        bool(args.quick or args.only or args.baseline_case), Path(args.out) if args.out else None
    )
    results = run(
        quick=args.quick,
        only=args.only,
        results_path=results_path,
        markdown_path=markdown_path,
        log=(lambda _line: None) if args.json else print,
        baseline_cases=args.baseline_case,
    )
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        for target in results["targets"]:
            print(f"  {target['status']:>12}  {target['what']}: {target['measured']}")
        print(f"wrote {results_path} and {markdown_path}")
    for name, error in results["errors"].items():
        print(f"bench: {name}: {error}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
