"""With pg_cron installed (as on Supabase), the migrations schedule public.maintain() every
minute, and the downgrade unschedules it. Runs a server of its own with pg_cron preloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest

from watchium_db import local, migrate
from watchium_db.testing import install_supabase_standin

pytestmark = pytest.mark.slow

DB = "watchium_cron"


@pytest.fixture
def cron_server():
    bindir = local.find_bindir()
    libdir = Path(os.popen(f"{bindir}/pg_config --pkglibdir").read().strip() or "/nonexistent")
    assert (libdir / "pg_cron.so").exists(), (
        "pg_cron is not installed (Debian: apt-get install postgresql-15-cron)"
    )
    server = local.throwaway("watchium-cron-")
    root = server.server_dir
    server.start(("shared_preload_libraries=pg_cron", f"cron.database_name={DB}"))
    server.wait_ready()
    try:
        with psycopg.connect(server.maintenance_url, autocommit=True) as conn:
            conn.execute(f"create database {DB}")
        yield server.url_for(DB)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_maintenance_is_scheduled_with_pg_cron(cron_server):
    url = cron_server
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pg_cron")
    install_supabase_standin(url)
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        jobs = conn.execute("select jobname, schedule, command, database from cron.job").fetchall()
        assert jobs == [("watchium-db-maintain", "* * * * *", "select public.maintain()", DB)]
    # Upgrading again (re-running the revision) keeps one job, and the downgrade removes it.
    migrate.downgrade(url, "0007")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select count(*) from cron.job").fetchone() == (0,)
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select count(*) from cron.job").fetchone() == (1,)
