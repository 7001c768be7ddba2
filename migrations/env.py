"""Alembic environment for watchium-db.

- The URL comes from ``sqlalchemy.url`` when a caller set it, else from the package's resolution
  order (``WATCHIUM_DATABASE_URL``, else the embedded local server, else Docker).
- A caller may pass a Connection or an Engine in ``config.attributes["connection"]``.
- Each revision runs in its own transaction, with ``lock_timeout`` and ``statement_timeout`` set,
  so a migration blocked behind a long transaction fails fast instead of queueing every query.
- The version table lives in the private schema ``watchium_private``, not in ``public``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, Engine, create_engine, pool, text

from watchium_db.database import resolve, sqlalchemy_url

PRIVATE_SCHEMA = "watchium_private"
VERSION_TABLE = "alembic_version"
LOCK_TIMEOUT = os.environ.get("WATCHIUM_MIGRATION_LOCK_TIMEOUT", "5s")
STATEMENT_TIMEOUT = os.environ.get("WATCHIUM_MIGRATION_STATEMENT_TIMEOUT", "5min")

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


def _run_with(connection: Connection) -> None:
    for statement in PREAMBLE:
        connection.execute(text(statement))
    connection.commit()
    _configure(connection=connection)
    context.run_migrations()


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
