"""Realtime health checks, for ``watchium-db doctor`` and for monitoring.

:func:`check` connects to the database and combines two things:

- whether the database is reachable and migrated to head (the seed's "database reachable");
- ``public.realtime_health()``, the SQL report: publication ``supabase_realtime`` with our four
  tables and their replica identities, the realtime schema and the active broadcast path
  (Supabase Realtime or NOTIFY), the Realtime Authorization policies, replication slot lag,
  the event log, stale members and empty rooms awaiting clean-up.

Problems make the report not ok (doctor exits 1); warnings are printed but do not fail it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from watchium_db import migrate


@dataclass(frozen=True)
class HealthReport:
    """The outcome of :func:`check`: ``ok`` is false when ``problems`` is not empty."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            **self.details,
        }


def check(url: str) -> HealthReport:
    """Check the database at ``url``; never raises for a database-side problem."""
    problems: list[str] = []
    details: dict[str, Any] = {}
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return HealthReport(problems=[f"database unreachable: {first}"])
    with conn:
        current = migrate.current_revision(url)
        head = migrate.head_revision()
        details["revision"] = {"current": current, "head": head}
        if current != head:
            problems.append(
                f"database is at revision {current or '(none)'}, head is {head}: "
                "run `watchium-db upgrade`"
            )
        installed = conn.execute(
            "select pg_catalog.to_regprocedure('public.realtime_health()') is not null"
        ).fetchone()
        if not (installed and installed[0]):
            problems.append(
                "public.realtime_health() is missing: the realtime revision is not installed"
            )
            return HealthReport(problems=problems, details=details)
        row = conn.execute("select public.realtime_health()").fetchone()
        history = check_sync_history(conn)
    assert row is not None
    report: dict[str, Any] = dict(row[0])
    problems += list(report.pop("problems", []))
    warnings = list(report.pop("warnings", []))
    report.pop("ok", None)
    details.update(report)
    if history is not None:
        problems += list(history.pop("problems", []))
        warnings += list(history.pop("warnings", []))
        history.pop("ok", None)
        details["sync_history"] = history
    return HealthReport(problems=problems, warnings=warnings, details=details)


def check_sync_history(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """``public.sync_history_health()``: the sync history partitions, and what maintenance runs
    skipped on a lock timeout left behind (hours ahead not attached, expired partitions still
    attached, detached tables, rows in the default partition). None before revision 0008."""
    installed = conn.execute(
        "select pg_catalog.to_regprocedure('public.sync_history_health()') is not null"
    ).fetchone()
    if not (installed and installed[0]):
        return None
    row = conn.execute("select public.sync_history_health()").fetchone()
    assert row is not None
    return dict(row[0])


def _yes(value: object) -> str:
    return "yes" if value else "no"


def format_report(report: HealthReport) -> str:
    """A readable, line-oriented rendering of ``report``."""
    d = report.details
    lines = [f"realtime health: {'OK' if report.ok else 'PROBLEMS FOUND'}"]
    rev = d.get("revision")
    if rev:
        lines.append(f"  revision        {rev['current'] or '(none)'} (head {rev['head']})")
    pub = d.get("publication")
    if pub:
        lines.append(
            f"  publication     supabase_realtime: exists {_yes(pub.get('exists'))}, "
            f"all tables {_yes(pub.get('all_tables'))}, "
            f"via partition root {_yes(pub.get('publish_via_partition_root'))}"
        )
        for table, info in sorted((pub.get("tables") or {}).items()):
            lines.append(
                f"    {table:<22} published {_yes(info.get('published')):<3}  "
                f"replica identity {info.get('replica_identity')} "
                f"(expected {info.get('expected_replica_identity')})"
            )
    rt = d.get("realtime")
    if rt:
        lines.append(
            f"  realtime        schema {_yes(rt.get('schema_present'))}, "
            f"realtime.send {_yes(rt.get('send_available'))}, "
            f"delivery {rt.get('delivery')} (setting {rt.get('delivery_setting')})"
        )
    auth = d.get("authorization")
    if auth:
        if auth.get("required"):
            for name, present in sorted((auth.get("policies") or {}).items()):
                lines.append(f"  policy          {name}: {'present' if present else 'MISSING'}")
        else:
            lines.append("  policies        not needed (no realtime.messages)")
    slots = d.get("replication_slots")
    if slots is not None:
        if not slots:
            lines.append("  slots           none")
        for slot in slots:
            lines.append(
                f"  slot            {slot['slot_name']} ({slot['plugin']}), "
                f"active {_yes(slot['active'])}, lag {slot['lag_bytes']} bytes"
            )
    ev, members, rooms = d.get("events"), d.get("members"), d.get("rooms")
    if ev:
        lines.append(
            f"  events          {ev['logged']} logged ({ev.get('last_minute', 0)} in the last "
            f"minute), retention {ev['retention']}, "
            f"NOTIFY queue {float(ev.get('notify_queue_usage', 0)):.0%} full"
        )
    if members:
        lines.append(
            f"  members         {members['total']} total, {members['stale']} stale "
            f"(no heartbeat for {members['stale_after']})"
        )
    if rooms:
        lines.append(f"  rooms           {rooms['total']} total, {rooms['empty']} empty")
    history = d.get("sync_history")
    if history:
        lines.append(
            f"  sync history    {history['partitions']} hourly partitions, "
            f"{len(history['missing_ahead'])} missing of the next {history['premake']}, "
            f"{len(history['expired_attached'])} expired still attached, "
            f"{history['default_rows']} rows in the default partition"
        )
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"problem: {p}" for p in report.problems]
    return "\n".join(lines)
