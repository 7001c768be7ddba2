"""With pg_cron installed (as on Supabase), the migrations schedule public.maintain() every
minute, and the downgrade unschedules it. Runs a server of its own with pg_cron preloaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest

from watchium_db import cli, health, local, migrate
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


def _schedule_problems(url: str) -> tuple[list[str], list[str]]:
    report = health.check(url)
    return (
        [p for p in report.problems if "watchium-db-maintain" in p or "not scheduled" in p],
        [w for w in report.warnings if "pg_cron" in w],
    )


def test_pg_cron_enabled_after_migrating_is_reported_and_scheduled_by_the_cli(
    cron_server, monkeypatch, capsys
):
    """The README's order on a new Supabase project: migrate first, enable pg_cron later."""
    url = cron_server
    install_supabase_standin(url)
    migrate.upgrade(url)
    problems, warnings = _schedule_problems(url)
    assert problems == [] and len(warnings) == 1
    assert "watchium-db schedule" in warnings[0] and "watchium-db maintain" in warnings[0]

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pg_cron")
        assert conn.execute("select count(*) from cron.job").fetchone() == (0,)
    problems, _ = _schedule_problems(url)
    assert len(problems) == 1 and "not scheduled" in problems[0]
    assert "`watchium-db schedule`" in problems[0]

    monkeypatch.setenv("WATCHIUM_DATABASE_URL", url)
    assert cli.main(["schedule"]) == 0
    assert capsys.readouterr().out.startswith("scheduled: pg_cron job")
    assert cli.main(["schedule"]) == 0  # idempotent
    assert capsys.readouterr().out.startswith("already scheduled")
    with psycopg.connect(url, autocommit=True) as conn:
        jobs = conn.execute("select jobname, schedule, command, database from cron.job").fetchall()
        assert jobs == [("watchium-db-maintain", "* * * * *", "select public.maintain()", DB)]
    assert _schedule_problems(url)[0] == []

    # An inactive job is reported, and the same command puts it right.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update cron.job set active = false")
    problems, _ = _schedule_problems(url)
    assert len(problems) == 1 and "inactive" in problems[0] and "watchium-db schedule" in problems[0]
    assert cli.main(["schedule", "--json"]) == 0
    assert '"status": "replaced"' in capsys.readouterr().out
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select active from cron.job").fetchall() == [(True,)]
    assert _schedule_problems(url)[0] == []


def test_a_failing_maintenance_run_is_reported(cron_server):
    url = cron_server
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pg_cron")
    install_supabase_standin(url)
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        (jobid,) = conn.execute("select jobid from cron.job").fetchone()
        # The row pg_cron writes when a run fails; dated ahead so it stays the newest even if
        # the worker starts a run of its own meanwhile.
        conn.execute(
            "insert into cron.job_run_details (jobid, runid, job_pid, database, username, command,"
            " status, return_message, start_time, end_time)"
            " values (%s, nextval('cron.runid_seq'), 1, %s, current_user,"
            " 'select public.maintain()', 'failed', 'ERROR:  canceling statement due to lock"
            " timeout', now() + interval '1 hour', now() + interval '1 hour')",
            (jobid, DB),
        )
    problems, _ = _schedule_problems(url)
    assert len(problems) == 1
    assert "last maintenance run" in problems[0] and "failed" in problems[0]
    assert "lock timeout" in problems[0] and "watchium-db maintain" in problems[0]


def test_schedule_uses_cron_schedule_where_schedule_in_database_is_not_executable(cron_server):
    """pg_cron revokes schedule_in_database from public: an owner that is not a superuser
    (Supabase's postgres, outside Supabase) schedules with cron.schedule instead of failing."""
    url = cron_server
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension pg_cron")
    install_supabase_standin(url)
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select cron.unschedule(jobid) from cron.job")
        conn.execute("create role watchium_cron_owner nosuperuser")
        conn.execute("grant usage on schema cron to watchium_cron_owner")
        # The body in watchium_rpc is the security definer function: its owner schedules.
        conn.execute(
            "alter function watchium_rpc.install_maintenance_schedule()"
            " owner to watchium_cron_owner"
        )
        assert conn.execute(
            "select has_function_privilege('watchium_cron_owner',"
            " 'cron.schedule_in_database(text, text, text, text, text, boolean)', 'execute')"
        ).fetchone() == (False,)
        (result,) = conn.execute("select public.install_maintenance_schedule()").fetchone()
        assert result["status"] == "scheduled" and result["via"] == "cron.schedule"
        jobs = conn.execute("select username, database, command from cron.job").fetchall()
        assert jobs == [("watchium_cron_owner", DB, "select public.maintain()")]
        conn.execute("select cron.unschedule(jobid) from cron.job")
        conn.execute(
            "alter function watchium_rpc.install_maintenance_schedule() owner to current_user"
        )


def test_schedule_without_pg_cron_says_how_to_enable_it(cron_server, monkeypatch, capsys):
    url = cron_server
    install_supabase_standin(url)
    migrate.upgrade(url)
    monkeypatch.setenv("WATCHIUM_DATABASE_URL", url)
    assert cli.main(["schedule"]) == 1
    err = capsys.readouterr().err
    assert "pg_cron is not installed" in err and "create extension pg_cron" in err
