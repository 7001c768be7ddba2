"""The ``watchium-db`` command line.

Each command is a function registered with :func:`command`; adding one is a decorated function
plus its argument definitions, nothing else. Errors print one line and a hint; ``--debug``
prints the traceback as well.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from watchium_db import __version__, database, local, migrate
from watchium_db.errors import SetupError, WatchiumError

Handler = Callable[[argparse.Namespace], int]


@dataclass
class Command:
    name: str
    help: str
    handler: Handler
    epilog: str = ""
    arguments: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    help: str,
    *,
    epilog: str = "",
    arguments: list[tuple[tuple[str, ...], dict[str, Any]]] | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as ``watchium-db NAME``."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, help, handler, epilog, arguments or [])
        return handler

    return register


def arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, options


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, default=str))


def _progress(text: str) -> contextlib.AbstractContextManager[Any]:
    """A rich spinner on stderr while a long step runs (nothing when stderr is not a terminal,
    so scripts and logs see only the result)."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
@command(
    "up",
    "start the local database if no URL is set, migrate to head, print the connection URL",
    epilog="examples:\n  watchium-db up\n  WATCHIUM_DATABASE_URL=postgresql://… watchium-db up",
)
def cmd_up(args: argparse.Namespace) -> int:
    with _progress("starting the database…"):
        db = database.resolve(start=True)
    with _progress(f"migrating {db.description} to head…"):
        migrate.upgrade(db.url, "head")
    print(database.redact_url(db.url))
    print(f"# {db.description}, at revision {migrate.current_revision(db.url)}", file=sys.stderr)
    return 0


@command(
    "down",
    "stop the local database server (data is kept)",
    epilog="example:\n  watchium-db down",
)
def cmd_down(args: argparse.Namespace) -> int:
    was_running = local.stop()
    print("stopped the local server" if was_running else "the local server was not running")
    return 0


@command(
    "upgrade",
    "migrate the database up to REV (default: head)",
    epilog="examples:\n  watchium-db upgrade\n  watchium-db upgrade 0002",
    arguments=[arg("revision", nargs="?", default="head", help="target revision (default: head)")],
)
def cmd_upgrade(args: argparse.Namespace) -> int:
    db = database.resolve()
    with _progress(f"migrating {db.description} to {args.revision}…"):
        migrate.upgrade(db.url, args.revision)
    print(f"at revision {migrate.current_revision(db.url)} ({db.description})")
    return 0


@command(
    "downgrade",
    "migrate the database down to REV ('base' removes everything watchium-db created)",
    epilog="examples:\n  watchium-db downgrade 0002\n  watchium-db downgrade base",
    arguments=[arg("revision", help="target revision, or 'base'")],
)
def cmd_downgrade(args: argparse.Namespace) -> int:
    db = database.resolve()
    with _progress(f"migrating {db.description} down to {args.revision}…"):
        migrate.downgrade(db.url, args.revision)
    print(f"at revision {migrate.current_revision(db.url)} ({db.description})")
    return 0


@command(
    "status",
    "show where the database is and its revision against head",
    epilog="examples:\n  watchium-db status\n  watchium-db status --json",
    arguments=[arg("--json", action="store_true", help="print JSON for scripts")],
)
def cmd_status(args: argparse.Namespace) -> int:
    db = database.resolve()
    current = migrate.current_revision(db.url)
    head = migrate.head_revision()
    report = {
        "backend": db.backend,
        "where": db.description,
        "url": database.redact_url(db.url),
        "current": current,
        "head": head,
        "up_to_date": current == head,
        "alembic_ini": str(migrate.alembic_ini()),
    }
    if args.json:
        _print_json(report)
    else:
        state = "up to date" if current == head else "behind head: run `watchium-db upgrade`"
        print(f"database: {db.description}")
        print(f"url:      {report['url']}")
        print(f"revision: {current or '(none)'} / head {head} — {state}")
        print(f"alembic:  alembic -c {report['alembic_ini']} …")
    return 0


@command(
    "maintain",
    "run the periodic job once: stale members, empty rooms, history partitions, event log",
    epilog=(
        "Run it every minute where pg_cron is not installed, e.g. from cron:\n"
        "  * * * * *  WATCHIUM_DATABASE_URL=postgresql://… watchium-db maintain\n\n"
        "examples:\n  watchium-db maintain\n  watchium-db maintain --json"
    ),
    arguments=[arg("--json", action="store_true", help="print the JSON summary for scripts")],
)
def cmd_maintain(args: argparse.Namespace) -> int:
    import psycopg

    db = database.resolve()
    with psycopg.connect(db.url, autocommit=True) as conn:
        row = conn.execute("select public.maintain()").fetchone()
    summary = row[0] if row else {}
    if args.json:
        _print_json(summary)
        return 0
    rooms = summary.get("rooms", {})
    history = summary.get("sync_history", {})
    events = summary.get("room_events", {})
    print(f"maintenance of {db.description} at {summary.get('ran_at')}")
    for label, part in (("rooms", rooms), ("sync history", history), ("room events", events)):
        details = ", ".join(f"{k}={v}" for k, v in part.items()) if isinstance(part, dict) else part
        print(f"  {label}: {details}")
    for skip in summary.get("skipped", []):
        where = f" {skip['step']} {skip['table']}" if skip.get("table") else ""
        reason = skip.get("reason")
        print(f"  skipped: {skip.get('job')}{where}: {reason} (retried by the next run)")
    return 0


@command(
    "schedule",
    "schedule the periodic job with pg_cron (idempotent; run it after enabling pg_cron)",
    epilog=(
        "Installs the pg_cron job watchium-db-maintain (select public.maintain(), every minute),\n"
        "or leaves it alone when it is already there as wanted. The migrations do this when\n"
        "pg_cron is installed; run it when pg_cron is enabled later (it is off in a new\n"
        "Supabase project). Without pg_cron, run `watchium-db maintain` from cron instead.\n\n"
        "examples:\n  watchium-db schedule\n  watchium-db schedule --json"
    ),
    arguments=[arg("--json", action="store_true", help="print the JSON result for scripts")],
)
def cmd_schedule(args: argparse.Namespace) -> int:
    import psycopg

    from watchium_db.errors import from_database_error

    db = database.resolve()
    with psycopg.connect(db.url, autocommit=True) as conn:
        try:
            row = conn.execute("select public.install_maintenance_schedule()").fetchone()
        except psycopg.Error as exc:
            if getattr(exc, "sqlstate", None):
                raise from_database_error(exc) from exc
            raise
    result = row[0] if row else {}
    if args.json:
        _print_json(result)
    else:
        print(
            f"{result.get('status')}: pg_cron job {result.get('job_id')} runs "
            f"{result.get('command')!r} at {result.get('schedule')!r} in {db.description}"
        )
    return 0


@command(
    "doctor",
    "check realtime health (publication, replica identities, broadcast path, policies, slots)"
    " and the maintenance schedule",
    epilog="examples:\n  watchium-db doctor\n  watchium-db doctor --json",
    arguments=[arg("--json", action="store_true", help="print the JSON report for scripts")],
)
def cmd_doctor(args: argparse.Namespace) -> int:
    from watchium_db import health

    db = database.resolve()
    report = health.check(db.url)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(health.format_report(report))
    if not report.ok:
        first = report.problems[0]
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        print(f"watchium-db: doctor: {first}{more}", file=sys.stderr)
    return 0 if report.ok else 1


@command(
    "demo",
    "play out a watch party on the database with the real functions, shown live",
    epilog=(
        "A host and four members in a private room (and a public one): play, seek, speed,\n"
        "drift and catch-up, chat, a stale member removed by maintenance, the host leaving.\n"
        "Rooms and users get fresh ids each run, so running it twice is harmless.\n\n"
        "examples:\n  watchium-db demo\n  watchium-db demo --fast\n"
        "  watchium-db demo --seconds 60\n  watchium-db demo --fast --json"
    ),
    arguments=[
        arg("--fast", action="store_true", help="finish in under 30 seconds"),
        arg("--seconds", type=float, default=None, help="length of the playing phase"),
        arg("--json", action="store_true", help="print only the JSON summary for scripts"),
    ],
)
def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console

    from watchium_db import demo

    # With --json the live view goes to stderr and only the summary to stdout.
    console = Console(stderr=True, quiet=args.json)
    with _progress("starting the database and migrating to head…"):
        db = database.resolve(start=True)
        migrate.upgrade(db.url, "head")
    console.print(f"[bold]watch party[/] on {db.description}")
    summary = asyncio.run(demo.run(db.url, fast=args.fast, seconds=args.seconds, console=console))
    if args.json:
        _print_json(summary)
    else:
        for line in demo.summary_lines(summary):
            print(line)
    ok = summary["host_changed"] and summary["everyone_in_sync"] and summary["events_received"]
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchium-db",
        description="Run and migrate the watchium-db PostgreSQL schema.",
        epilog=(
            "The database is WATCHIUM_DATABASE_URL when set, else a local server started from "
            "the PostgreSQL binaries on this machine, else a Docker container."
        ),
    )
    parser.add_argument("--version", action="version", version=f"watchium-db {__version__}")
    parser.add_argument("--debug", action="store_true", help="print tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            epilog=cmd.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for flags, options in cmd.arguments:
            p.add_argument(*flags, **options)
        p.set_defaults(handler=cmd.handler)
    return parser


def _hint_for(exc: BaseException) -> str | None:
    if isinstance(exc, SetupError | WatchiumError):
        return exc.hint
    text = str(exc)
    if "connection" in text.lower() and "refused" in text.lower():
        return "is the database running? `watchium-db up` starts the local one"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        if isinstance(exc, SetupError | WatchiumError):
            message = exc.message
        else:
            message = str(exc).strip().splitlines()[0]
        print(f"watchium-db: error: {message}", file=sys.stderr)
        hint = _hint_for(exc)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
