"""Alembic environment for watchium-db.

- The URL comes from ``sqlalchemy.url`` when a caller set it, else from the package's resolution
  order (``WATCHIUM_DATABASE_URL``, else the embedded local server, else Docker).
- A caller may pass a Connection or an Engine in ``config.attributes["connection"]``.
- Each revision runs in its own transaction, with ``lock_timeout`` and ``statement_timeout`` set,
  so a migration blocked behind a long transaction fails fast instead of queueing every query.
- The version table lives in the private schema ``watchium_private``, not in ``public``.
- Online runs hold a session advisory lock (``MIGRATION_LOCK_KEY``) from before the first
  statement to the end, so two overlapping upgrades or downgrades of one database never run
  at once: the second waits up to ``WATCHIUM_MIGRATION_WAIT`` seconds (default 60; 0 = do not
  wait), then reads the version the first one left and carries on from there, or stops with
  "another upgrade is running".
- What a migration could not install (it raises a WARNING whose message starts with
  ``watchium-db:``, e.g. Realtime Authorization when the migrating role may not create policies
  on ``realtime.messages``) is printed on stderr at the end of the run, with its hint (the fix),
  by ``watchium-db upgrade`` and ``alembic upgrade`` alike; ``watchium-db doctor`` reports it too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, create_engine, pool, text

from watchium_db.database import resolve, sqlalchemy_url
from watchium_db.errors import SetupError

PRIVATE_SCHEMA = "watchium_private"
VERSION_TABLE = "alembic_version"
LOCK_TIMEOUT = os.environ.get("WATCHIUM_MIGRATION_LOCK_TIMEOUT", "5s")
STATEMENT_TIMEOUT = os.environ.get("WATCHIUM_MIGRATION_STATEMENT_TIMEOUT", "5min")
# The advisory lock every online migration run holds: 'watchium' in ASCII, as a bigint.
MIGRATION_LOCK_KEY = 0x7761746368697564

config = context.config

try:
    from watchium_db.models import Base

    target_metadata = Base.metadata
except ImportError:  # models are optional for running migrations
    target_metadata = None

PREAMBLE = (
    f"SET lock_timeout = '{LOCK_TIMEOUT}';",
    f"SET statement_timeout = '{STATEMENT_TIMEOUT}';",
    f"CREATE SCHEMA IF NOT EXISTS {PRIVATE_SCHEMA};",
)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        version_table_schema=PRIVATE_SCHEMA,
        transaction_per_migration=True,
        include_schemas=True,
        include_name=_include_name,
        compare_type=True,
        # Comments are documentation written in the migrations (and rendered into
        # docs/schema.md); the models do not repeat them, so they are not compared.
        autogenerate_plugins=["alembic.autogenerate.*", "~alembic.autogenerate.comments"],
        **kwargs,  # type: ignore[arg-type]
    )


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate compares only our two schemas, and never the version table itself."""
    if type_ == "schema":
        return name in (None, "public", PRIVATE_SCHEMA)
    if type_ == "table":
        # Partitions of sync_states are created at run time; the model is the parent.
        partition = (name or "").startswith("sync_states_p") or name == "sync_states_default"
        return name != VERSION_TABLE and not partition
    return True


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or "postgresql+psycopg://offline"
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    for statement in PREAMBLE:
        context.get_context().impl.static_output(statement)
    context.run_migrations()


def _migration_wait() -> float:
    raw = os.environ.get("WATCHIUM_MIGRATION_WAIT", "60")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86400:
        raise SetupError(
            f"WATCHIUM_MIGRATION_WAIT must be a number of seconds from 0 to 86400, not {raw!r}"
        )
    return seconds


def _take_migration_lock(connection: Connection) -> None:
    """Hold the migration advisory lock for this session, waiting up to WATCHIUM_MIGRATION_WAIT.

    Taken before any other statement (even CREATE SCHEMA IF NOT EXISTS collides when two runs
    race), so the run that waited reads the version the other one left.
    """
    wait = _migration_wait()
    key = {"key": MIGRATION_LOCK_KEY}
    if wait == 0:
        got = connection.execute(text("select pg_try_advisory_lock(:key)"), key).scalar()
    else:
        connection.execute(text(f"SET lock_timeout = '{int(wait * 1000)}ms'"))
        try:
            connection.execute(text("select pg_advisory_lock(:key)"), key)
            got = True
        except Exception as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) != "55P03":
                raise
            connection.rollback()
            got = False
    connection.commit()
    if got:
        return
    holder = connection.execute(
        text(
            "select a.pid, a.backend_start from pg_locks l"
            " join pg_stat_activity a on a.pid = l.pid"
            " where l.locktype = 'advisory' and l.granted and l.database ="
            " (select oid from pg_database where datname = current_database())"
            " and l.classid = (:key >> 32)::oid and l.objid = (:key & 4294967295)::oid"
            " and l.objsubid = 1"
        ),
        key,
    ).first()
    connection.rollback()
    who = f" (backend pid {holder[0]}, connected {holder[1]:%Y-%m-%d %H:%M:%S})" if holder else ""
    raise SetupError(
        f"another watchium-db upgrade or downgrade is running on this database{who}; "
        f"gave up after waiting {wait:g} s",
        hint="let it finish and run the command again, or wait longer with "
        "WATCHIUM_MIGRATION_WAIT=<seconds>",
    )


def _release_migration_lock(connection: Connection) -> None:
    connection.execute(text("select pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()


WARNING_PREFIX = "watchium-db:"


@contextlib.contextmanager
def _warnings_printed(connection: Connection) -> Iterator[None]:
    """Print the migrations' own warnings (message starting with WARNING_PREFIX) at the end."""
    found: list[tuple[str, str | None]] = []
    driver: Any = getattr(connection.connection, "driver_connection", None)
    if not hasattr(driver, "add_notice_handler"):  # psycopg 3 only
        yield
        return

    def handler(diag: Any) -> None:
        severity = diag.severity_nonlocalized or diag.severity
        message = diag.message_primary or ""
        if severity == "WARNING" and message.startswith(WARNING_PREFIX):
            found.append((message, diag.message_hint))

    driver.add_notice_handler(handler)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            driver.remove_notice_handler(handler)
        for message, hint in found:
            print(f"WARNING: {message}", file=sys.stderr)
            if hint:
                print(f"  fix: {hint}", file=sys.stderr)


def _run_with(connection: Connection) -> None:
    _take_migration_lock(connection)
    with _warnings_printed(connection):
        _run_locked(connection)


def _run_locked(connection: Connection) -> None:
    try:
        for statement in PREAMBLE:
            connection.execute(text(statement))
        connection.commit()
        _configure(connection=connection)
        context.run_migrations()
    except BaseException:
        if connection.in_transaction():
            connection.rollback()
        with contextlib.suppress(Exception):  # the session is gone, and its lock with it
            _release_migration_lock(connection)
        raise
    _release_migration_lock(connection)


def run_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run_with(given)
        return
    if isinstance(given, Engine):
        with given.connect() as connection:
            _run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or sqlalchemy_url(resolve().url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run_with(connection)
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
