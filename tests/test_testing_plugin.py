"""The pytest plugin as app teams use it: the factories, and the example project run as is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from watchium_db.client import Client
from watchium_db.testing import TestServer, make_room

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "app-tests"


def test_make_room_uses_the_real_rpcs(
    watchium_conn: psycopg.Connection[Any], watchium_client: Client
) -> None:
    room = make_room(watchium_conn, host="hana", members=["mika", "ren"], private=True)
    assert room.access_key is not None and len(room.access_key) == 6 and not room.is_public
    details = watchium_client.as_user("hana").get_room(room.room_id)
    assert details.access_key == room.access_key  # the key really is the room's secret
    assert [(m.user_id, m.is_host) for m in details.members] == [
        ("hana", True), ("mika", False), ("ren", False),
    ]  # fmt: skip
    # join_room's trigger wrote the member_joined events, as in production.
    joined = watchium_conn.execute(
        "select count(*) from watchium_private.room_events"
        " where room_id = %s and event = 'member_joined'",
        (room.room_id,),
    ).fetchone()
    assert joined == (3,)


def test_the_example_app_suite_passes(watchium_server: TestServer) -> None:
    env = {
        **os.environ,
        "WATCHIUM_TEST_DATABASE_URL": watchium_server.maintenance_url,
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # load exactly the plugin named below
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "watchium_db.testing", "-p", "no:cacheprovider",
         "--rootdir", str(EXAMPLE), "-c", os.devnull, str(EXAMPLE)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout


def test_the_plugin_costs_nothing_until_a_fixture_is_used() -> None:
    # pytest loads the entry point in every run where watchium-db is installed: loading it
    # imports no database driver, no SQLAlchemy/Alembic and nothing POSIX-only.
    probe = (
        "import sys, pytest\n"
        "import watchium_db.testing as plugin\n"
        "heavy = ['psycopg', 'sqlalchemy', 'alembic', 'pwd', 'rich', 'watchium_db.local',\n"
        "         'watchium_db.database', 'watchium_db.migrate', 'watchium_db.testing.support']\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
        "from watchium_db.testing import as_user, make_room, TestServer\n"
        "print(as_user.__module__, make_room.__module__, 'psycopg' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded, names = done.stdout.splitlines()
    assert loaded == "[]"
    # The helpers' names still import from the plugin module (and only then load the driver).
    assert names == "watchium_db.testing.support watchium_db.testing.support True"
