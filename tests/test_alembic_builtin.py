"""pytest-alembic's built-in migration checks, on an empty database with the Supabase stand-in:
one head, upgrade base -> head revision by revision, every downgrade undoes its upgrade, and the
models match the migrated schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_alembic.tests import (  # type: ignore[import-untyped]
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, create_engine, pool

from watchium_db import migrate
from watchium_db.database import sqlalchemy_url

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> object:
    from pytest_alembic.config import Config

    return Config.from_raw_config({"file": str(migrate.alembic_config().config_file_name)})


@pytest.fixture
def alembic_engine(empty_db_url: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(empty_db_url), poolclass=pool.NullPool)
    yield engine
    engine.dispose()
