"""Shared fixtures. The database fixtures come from the watchium_db pytest plugin
(watchium_db.testing), the same one app teams use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from watchium_db.testing import TestServer, create_database, install_supabase_standin


@pytest.fixture
def empty_db_url(watchium_server: TestServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database with the Supabase stand-in, for migration tests."""
    name = f"watchium_empty_{abs(hash(request.node.nodeid)) % 10**8}"
    url = create_database(watchium_server, name)
    install_supabase_standin(url)
    yield url
    with psycopg.connect(watchium_server.maintenance_url, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
        )
        conn.execute(f'drop database if exists "{name}"')


@pytest.fixture
def conn(watchium_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    return watchium_conn
