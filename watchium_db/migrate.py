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


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the shipped migrations (source checkout or installed wheel)."""
    root = _project_root()
    ini = root / "alembic.ini"
    if ini.exists():
        cfg = Config(str(ini))
        cfg.set_main_option("script_location", str(root / "migrations"))
    else:  # installed from a wheel: migrations ship inside the package
        here = Path(__file__).resolve().parent
        cfg = Config(str(here / "_alembic.ini"))
        cfg.set_main_option("script_location", str(here / "_migrations"))
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
