"""Pytest plugin: a fresh watchium-db database at head for every test.

Registered as the ``watchium_db`` pytest11 entry point, so any project that installs watchium-db
gets these fixtures:

``watchium_server``   (session) the PostgreSQL server the tests use, resolved in the package's
                      order: ``WATCHIUM_TEST_DATABASE_URL``, else a throw-away local server started
                      from the installed binaries, else a Docker container.
``watchium_template`` (session) name of a template database migrated to head, with a stand-in
                      for Supabase's platform objects installed first when they are absent.
``watchium_db_url``   a database cloned from the template for this test (dropped afterwards).
``watchium_conn``     a psycopg connection to it as the migrating superuser.

``watchium_client``   a :class:`watchium_db.client.Client` over ``watchium_conn``
                      (``watchium_client.as_user("alice").join_room(...)``).

``as_user(conn, user_id)`` runs statements the way PostgREST does: transaction-local JWT claims
plus ``set local role authenticated``.

``make_room(conn, host=..., members=[...], private=False)`` creates a room through the real
``create_room`` / ``join_room`` functions as those users and returns a :class:`TestRoom`.
See docs/testing.md.
"""

# The module is the pytest11 entry point, loaded by every pytest run where watchium-db is
# installed: it imports nothing beyond pytest at load. Helpers live in ``support`` and are
# imported when a fixture is used or a name is looked up (``from watchium_db.testing import ...``).
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psycopg

    from watchium_db.client import Client
    from watchium_db.testing.support import (
        STANDIN_SQL,
        TEMPLATE_DB,
        TestRoom,
        TestServer,
        as_user,
        build_template,
        create_database,
        drop_database,
        install_supabase_standin,
        make_room,
        test_server,
    )

__all__ = [
    "STANDIN_SQL",
    "TEMPLATE_DB",
    "TestRoom",
    "TestServer",
    "as_user",
    "build_template",
    "create_database",
    "drop_database",
    "install_supabase_standin",
    "make_room",
    "test_server",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from watchium_db.testing import support

        return getattr(support, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_counter = itertools.count()


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def watchium_server() -> Iterator[TestServer]:
    from watchium_db.testing.support import test_server

    with test_server() as server:
        yield server


@pytest.fixture(scope="session")
def watchium_template(watchium_server: TestServer) -> Iterator[str]:
    import psycopg

    from watchium_db.testing.support import TEMPLATE_DB, build_template, drop_database

    name = f"{TEMPLATE_DB}_{os.getpid()}"
    build_template(watchium_server, name)
    with psycopg.connect(watchium_server.maintenance_url, autocommit=True) as conn:
        conn.execute(f'alter database "{name}" is_template true')
    yield name
    with psycopg.connect(watchium_server.maintenance_url, autocommit=True) as conn:
        conn.execute(f'alter database "{name}" is_template false')
    drop_database(watchium_server.maintenance_url, name)


@pytest.fixture
def watchium_db_url(watchium_server: TestServer, watchium_template: str) -> Iterator[str]:
    from watchium_db.testing.support import create_database, drop_database

    name = f"watchium_test_{os.getpid()}_{next(_counter)}"
    url = create_database(watchium_server, name, template=watchium_template)
    yield url
    drop_database(watchium_server.maintenance_url, name)


@pytest.fixture
def watchium_conn(watchium_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    import psycopg

    with psycopg.connect(watchium_db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def watchium_client(watchium_conn: psycopg.Connection[Any]) -> Client:
    """A typed client over ``watchium_conn``: ``.as_user(id)``, ``.anonymous()``, ``.service()``."""
    from watchium_db.client import Client

    return Client(watchium_conn)
