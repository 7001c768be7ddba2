"""Realtime health checks, for ``watchium-db doctor`` and for monitoring.

:func:`check` connects to the database and combines two things:

- whether the database is reachable and migrated to head (the seed's "database reachable");
- ``public.realtime_health()``, the SQL report: publication ``supabase_realtime`` with our three
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
        schedule = maintenance_schedule(conn)
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
    problems += schedule.pop("problems")
    warnings += schedule.pop("warnings")
    details["maintenance_schedule"] = schedule
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


JOB_NAME = "watchium-db-maintain"
JOB_SCHEDULE = "* * * * *"
JOB_COMMAND = "select public.maintain()"
SCHEDULE_FIX = (
    "run `watchium-db schedule` (or `select public.install_maintenance_schedule()` as the "
    "database owner or service_role)"
)
# A job that runs every minute and has not started for this long is not running.
OVERDUE_MINUTES = 5


def maintenance_schedule(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Whether pg_cron runs ``public.maintain()`` here: from ``cron.job`` and
    ``cron.job_run_details``. Returns the details plus ``problems`` and ``warnings``, each
    naming the fix."""
    problems: list[str] = []
    warnings: list[str] = []
    out: dict[str, Any] = {"pg_cron": False, "job": None, "last_run": None}
    ext = conn.execute(
        "select exists (select from pg_catalog.pg_extension where extname = 'pg_cron'),"
        " exists (select from pg_catalog.pg_available_extensions where name = 'pg_cron')"
    ).fetchone()
    installed, available = ext if ext else (False, False)
    out["pg_cron"] = installed
    if not installed:
        enable = (
            "enable pg_cron (Supabase: Database > Extensions) and "
            if available
            else "install pg_cron and "
        )
        warnings.append(
            "pg_cron is not installed, so nothing in the database runs public.maintain(): "
            f"{enable}run `watchium-db schedule`, or run `watchium-db maintain` every minute "
            "from cron or a systemd timer"
        )
        return {**out, "problems": problems, "warnings": warnings}
    try:
        with conn.transaction():
            job = conn.execute(
                "select jobid, schedule, command, database, active, username from cron.job"
                " where jobname = %s order by jobid limit 1",
                (JOB_NAME,),
            ).fetchone()
            last = None
            if job is not None:
                last = conn.execute(
                    "select status, return_message, start_time, end_time,"
                    " start_time < now() - make_interval(mins => %s) as overdue"
                    " from cron.job_run_details where jobid = %s"
                    " order by start_time desc nulls last limit 1",
                    (OVERDUE_MINUTES, job[0]),
                ).fetchone()
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        problems.append(
            f"cannot read pg_cron's jobs ({first}): run `watchium-db doctor` as the database "
            "owner to check the maintenance schedule"
        )
        return {**out, "problems": problems, "warnings": warnings}
    if job is None:
        problems.append(
            f"maintenance is not scheduled: pg_cron has no job {JOB_NAME}, so stale members, "
            f"empty rooms and history partitions are never handled; {SCHEDULE_FIX}"
        )
        return {**out, "problems": problems, "warnings": warnings}
    jobid, schedule, command, database, active, username = job
    out["job"] = {
        "job_id": jobid,
        "schedule": schedule,
        "command": command,
        "database": database,
        "active": active,
        "username": username,
    }
    current_db = conn.execute("select current_database()").fetchone()
    wanted = (JOB_SCHEDULE, JOB_COMMAND, current_db[0] if current_db else database)
    if not active:
        problems.append(f"cron job {JOB_NAME} (id {jobid}) is inactive; {SCHEDULE_FIX}")
    elif (schedule, command, database) != wanted:
        problems.append(
            f"cron job {JOB_NAME} (id {jobid}) runs {command!r} at {schedule!r} in database "
            f"{database}, not {wanted[1]!r} every minute here; {SCHEDULE_FIX}"
        )
    if last is None:
        if active:
            warnings.append(
                f"cron job {JOB_NAME} has not run yet: if this lasts over a minute, check that "
                "pg_cron's worker runs (shared_preload_libraries, cron.database_name)"
            )
        return {**out, "problems": problems, "warnings": warnings}
    status, message, start_time, end_time, overdue = last
    out["last_run"] = {
        "status": status,
        "message": message,
        "start_time": start_time,
        "end_time": end_time,
    }
    if status == "failed":
        problems.append(
            f"the last maintenance run (cron job {JOB_NAME}, started {start_time}) failed: "
            f"{(message or '').strip()}; fix the cause, then check with `watchium-db maintain` "
            "(it runs the same job once and prints the error)"
        )
    elif active and overdue:
        problems.append(
            f"cron job {JOB_NAME} has not started since {start_time} "
            f"(over {OVERDUE_MINUTES} minutes): check that pg_cron's worker runs "
            "(shared_preload_libraries, cron.database_name) and that the job's user may log in"
        )
    return {**out, "problems": problems, "warnings": warnings}


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
    sched = d.get("maintenance_schedule")
    if sched:
        job = sched.get("job")
        if not sched.get("pg_cron"):
            lines.append("  maintenance     pg_cron not installed")
        elif not job:
            lines.append("  maintenance     NOT SCHEDULED")
        else:
            last = sched.get("last_run") or {}
            lines.append(
                f"  maintenance     cron job {job['job_id']} {job['schedule']!r}, "
                f"active {_yes(job['active'])}, last run "
                f"{last.get('status', 'none')} {last.get('start_time') or ''}".rstrip()
            )
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"problem: {p}" for p in report.problems]
    return "\n".join(lines)
