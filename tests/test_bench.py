"""The benchmark command: a quick run produces well-formed JSON, Markdown and charts.

The run starts its own throw-away server (default durability), so this test takes a couple of
minutes; it runs a subset in the default suite and everything in the slow one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from watchium_db import cli, migrate
from watchium_db.devtools import bench, release_checksums


def _check_outputs(results: dict[str, Any], json_path: Path, md_path: Path) -> None:
    on_disk = json.loads(json_path.read_text())
    assert on_disk["quick"] is True
    assert on_disk["errors"] == {}, on_disk["errors"]
    machine = on_disk["machine"]
    # Default durability: the point of running our own server.
    assert machine["fsync"] == "on"
    assert machine["synchronous_commit"] == "on"
    assert machine["full_page_writes"] == "on"
    assert machine["wal_level"] == "logical"
    assert machine["postgres"].startswith("15") or int(machine["postgres"].split(".")[0]) >= 15
    statuses = {t["status"] for t in on_disk["targets"]}
    assert statuses <= {"met", "missed", "not measured", "informational"}
    md = md_path.read_text()
    assert md.startswith("# Benchmarks")
    # Every Markdown table row has as many cells as its header.
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M):
        lines = block.strip().splitlines()
        widths = {line.count("|") for line in lines}
        assert len(widths) == 1, block
    for target in on_disk["targets"]:
        assert target["what"] in md


def test_quick_bench_host_control_and_rate_limit(tmp_path: Path) -> None:
    json_path, md_path = tmp_path / "latest.json", tmp_path / "benchmarks.md"
    results = bench.run(
        quick=True,
        only=["host_control", "rate_limit", "heartbeat_costs", "maintain_waits"],
        results_path=json_path,
        markdown_path=md_path,
        log=lambda _line: None,
    )
    _check_outputs(results, json_path, md_path)
    hc = results["host_control"]["by_members"]
    assert set(hc) == {"10", "100", "1000"}
    for n, row in hc.items():
        # Steady (pgbench, back to back) and interleaved (single calls in turn) timings.
        for timings in (row, row["interleaved"]):
            assert timings["ours_ms"] > 0 and timings["seed_ms"] > 0 and timings["floor_ms"] > 0
            assert timings["speedup_vs_seed"] == round(timings["seed_ms"] / timings["ours_ms"], 3)
        # Ours wrote a sync record for every member on every control (rounds + warm-up),
        # one snapshot row per control.
        controls = results["host_control"]["rounds"] + 1
        assert row["sync_records_written_by_ours"] == int(n) * controls
        assert row["history_rows_written_by_ours"] == controls
    rl = results["rate_limit"]["by_rows"]
    assert set(rl) == {"10000", "100000"}
    # Timings are the benchmark's findings, not the test's: only their presence is checked here.
    assert all(row["seed_ms"] > 0 and row["ours_ms"] > 0 for row in rl.values())
    costs = results["heartbeat_costs"]
    assert costs["ours"]["heartbeats"] == costs["seed"]["heartbeats"] > 0
    # The seed's heartbeat publishes its member update and its history insert.
    assert costs["seed"]["published_change_rows_per_heartbeat"] >= 2
    assert costs["seed"]["wal_bytes_per_heartbeat"] > 0
    # History is sampled at the production rate (one heartbeat in 20 per member), so samples
    # show up, and they are decoded under the partitions' own names, not the parent's.
    assert 0.01 <= costs["history_samples_per_heartbeat"] <= 0.25
    decoded = costs["ours"]["decoded_change_rows_by_relation"]
    assert any(rel.startswith("public.sync_states_p") and n > 0 for rel, n in decoded.items())
    assert "public.sync_states" not in decoded
    published = set(costs["published_relations_ours"])
    assert set(costs["ours"]["published_change_rows_by_relation"]) <= published
    # The same measurement for heartbeats carrying a send time, an RTT and the episode: every
    # one updated a presence row, sampled at the production rate too, with its target rows.
    latency = costs["ours_latency"]
    assert latency["heartbeats"] == costs["ours"]["heartbeats"]
    assert latency["presence_updates"] == latency["heartbeats"]
    assert 0.01 <= costs["history_samples_per_heartbeat_latency"] <= 0.25
    assert set(latency["published_change_rows_by_relation"]) <= published
    rows = {t["what"]: t for t in results["targets"]}
    assert (
        rows["HOT share of presence updates, heartbeats with RTT"]["measured"]
        == latency["hot_share"]
    )
    assert (
        rows["published change rows per heartbeat, heartbeats with RTT"]["measured"]
        == latency["published_change_rows_per_heartbeat"]
    )
    # maintain() ran back to back beside the RPCs and retired the expired partitions it was
    # given; its lock waits are counted from the server's log, and the target rows carry them.
    mw = results["maintain_waits"]
    assert mw["maintain_runs"] > 0 and mw["maintain_errors"] == {}
    assert mw["expired_partitions_retired"] + mw["expired_partitions_left"] == (
        mw["rounds"] * mw["expired_partitions_per_round"]
    )
    # What a round left (the parent never free at once beside the RPCs) the runs between rounds,
    # with no RPC in flight, retired: maintain() does retire when it can.
    assert mw["expired_partitions_retired_after_round"] == mw["expired_partitions_left"]
    assert mw["expired_partitions_never_retired"] == 0
    # The slowest run is kept with its own report, to tell which job took the time.
    assert mw["maintain_slowest_run"]["ms"] == mw["maintain_max_ms"]
    assert {"rooms", "sync_history", "rate_limits"} <= set(mw["maintain_slowest_run"]["report"])
    assert mw["rpc_lock_waits_queued_behind_maintain"] + mw["rpc_lock_waits_maintain_holds"] == (
        mw["rpc_lock_waits_on_maintain"]
    )
    for phase in ("baseline", "maintain"):
        assert mw["phases"][phase]["all"]["calls"] == sum(
            r["calls"] for r in mw["phases"][phase]["by_rpc"].values()
        )
        assert all(r["calls"] > 0 for r in mw["phases"][phase]["by_rpc"].values())
    assert (
        mw["rpc_lock_waits_on_maintain"] + mw["rpc_lock_waits_other"]
        == (mw["rpc_lock_waits_logged"])
    )
    row = rows["RPC calls that waited on a lock held by maintain()"]
    assert row["measured"] == mw["rpc_lock_waits_on_maintain"]
    assert row["status"] == ("met" if mw["rpc_lock_waits_on_maintain"] == 0 else "missed")
    assert rows["RPC latency p99 while maintain() runs / without"]["status"] == "informational"
    assert (tmp_path / "bench_host_control.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "bench_rate_limit.png").read_bytes()[:4] == b"\x89PNG"


def test_release_baseline_measures_head_and_the_released_head_in_one_run(tmp_path: Path) -> None:
    json_path, md_path = tmp_path / "latest.json", tmp_path / "benchmarks.md"
    results = bench.run(
        quick=True,
        only=["release_baseline"],
        results_path=json_path,
        markdown_path=md_path,
        log=lambda _line: None,
    )
    _check_outputs(results, json_path, md_path)
    baseline = results["release_baseline"]
    # Two databases: one at head, one at the last release's head.
    assert baseline["revisions"] == {
        "head": migrate.head_revision(),
        "release": release_checksums.released_head(),
    }
    assert baseline["release"] == bench.released_version() != "release"
    assert set(baseline["cases"]) == {c.key for c in bench.BASELINE_CASES}
    assert {"single_heartbeat", "batched_heartbeat", "host_control_1000"} <= set(baseline["cases"])
    for case in baseline["cases"].values():
        assert case["head"] > 0 and case["release"] > 0
        faster = (case["head"], case["release"])
        if case["metric"] == "ms":
            faster = faster[::-1]
        assert case["speed_ratio"] == round(faster[0] / faster[1], 3)
    rows = {t["what"]: t for t in results["targets"] if "head vs" in t["what"]}
    assert len(rows) == len(bench.BASELINE_CASES)
    for case in bench.BASELINE_CASES:
        row = rows[f"{case.what}, head vs {baseline['release']}: speed ratio"]
        assert row["measured"] == baseline["cases"][case.key]["speed_ratio"]
        assert row["status"] in {"met", "missed"}
    assert f"## Head against {baseline['release']}" in md_path.read_text()


def test_lock_waits_are_read_from_the_server_log_with_holders_and_queue() -> None:
    log = (
        "2026-12-03 16:40:00.100 UTC [201] LOG:  process 201 still waiting for AccessShareLock"
        " on relation 16500 of database 5 after 1.012 ms\n"
        "2026-12-03 16:40:00.100 UTC [201] DETAIL:  Process holding the lock: 300."
        " Wait queue: 201.\n"
        '2026-12-03 16:40:00.100 UTC [201] CONTEXT:  SQL statement "select 1\n'
        '\tfrom public.sync_states"\n'
        "2026-12-03 16:40:00.100 UTC [201] STATEMENT:  select public.get_room_sync_metrics($1)\n"
        "2026-12-03 16:40:00.101 UTC [202] LOG:  process 202 still waiting for RowExclusiveLock"
        " on relation 16500 of database 5 after 1.005 ms\n"
        "2026-12-03 16:40:00.101 UTC [202] DETAIL:  Processes holding the lock: 201, 203."
        " Wait queue: 300, 202.\n"
        "2026-12-03 16:40:00.140 UTC [201] LOG:  process 201 acquired AccessShareLock on"
        " relation 16500 of database 5 after 40.500 ms\n"
        "2026-12-03 16:40:00.141 UTC [203] LOG:  checkpoint starting: time\n"
    )
    first, second = bench.parse_lock_waits(log)
    assert first == {
        "pid": 201,
        "mode": "AccessShareLock",
        "object": "relation 16500 of database 5",
        "waited_ms": 40.5,  # the acquired line's figure replaces the first one
        "holders": [300],
        "queue": [201],
        "context": 'SQL statement "select 1 from public.sync_states"',
        "statement": "select public.get_room_sync_metrics($1)",
    }
    assert (second["pid"], second["holders"], second["queue"]) == (202, [201, 203], [300, 202])
    assert second["waited_ms"] == 1.005 and second["statement"] == ""


def test_unknown_baseline_case_is_rejected_before_starting_a_server() -> None:
    with pytest.raises(ValueError, match="unknown baseline case"):
        bench.run(only=["release_baseline"], baseline_cases=["no_such_case"])


def test_unknown_benchmark_is_rejected_before_starting_a_server() -> None:
    with pytest.raises(ValueError, match="unknown benchmark"):
        bench.run(only=["no_such_benchmark"])


def test_bench_is_a_contributor_command_not_shipped_in_the_cli() -> None:
    # The benchmarks run from a source checkout (make bench); the installed CLI does not offer
    # them, since the wheel leaves watchium_db.devtools out.
    assert "bench" not in cli.COMMANDS and "docs" not in cli.COMMANDS
    with pytest.raises(SystemExit) as done:
        bench.main(["--help"])
    assert done.value.code == 0


def test_partial_runs_never_replace_the_full_report(tmp_path: Path) -> None:
    assert bench.output_paths(partial=False) == (bench.RESULTS, bench.MARKDOWN)
    json_path, md_path = bench.output_paths(partial=True)
    assert json_path.parent == md_path.parent == bench.PARTIAL
    assert json_path != bench.RESULTS and md_path != bench.MARKDOWN
    assert bench.output_paths(partial=True, out=tmp_path) == (
        tmp_path / "results.json",
        tmp_path / "benchmarks.md",
    )
    assert bench.output_paths(partial=False, out=tmp_path)[1] == tmp_path / "benchmarks.md"


@pytest.mark.slow
def test_quick_bench_everything(tmp_path: Path) -> None:
    json_path, md_path = tmp_path / "latest.json", tmp_path / "benchmarks.md"
    results = bench.run(
        quick=True, results_path=json_path, markdown_path=md_path, log=lambda _line: None
    )
    _check_outputs(results, json_path, md_path)
    assert all(name in results for name in bench.BENCHMARKS)
