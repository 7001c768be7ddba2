"""Programmatic access to the migrations: upgrade, downgrade, current revision and head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from watchium_db.database import sqlalchemy_url

PRIVATE_SCHEMA = "watchium_private"
VERSION_TABLE = "alembic_version"


def alembic_ini() -> Path:
    """The shipped ``alembic.ini``; ``migrations/`` is next to it (script_location is
    ``%(here)s/migrations``). Installed, both live inside the package; in a source checkout,
    at the root. The package's own copy wins, so nothing else on the path is ever picked up."""
    package = Path(__file__).resolve().parent
    installed = package / "alembic.ini"
    if installed.is_file() and (package / "migrations").is_dir():
        return installed
    checkout = package.parent / "alembic.ini"
    if checkout.is_file() and (package.parent / "migrations" / "env.py").is_file():
        return checkout
    raise FileNotFoundError(f"alembic.ini with migrations/ not found next to {package}")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the shipped migrations (source checkout or installed wheel), the
    same file ``alembic -c <path> ...`` reads (``watchium-db status`` prints the path)."""
    cfg = Config(str(alembic_ini()))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {len(heads)}: {heads}")
    return heads[0]


def current_revision(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={"version_table": VERSION_TABLE, "version_table_schema": PRIVATE_SCHEMA},
            )
            return ctx.get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
