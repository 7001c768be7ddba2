"""Where the database comes from: the resolution order, the CLI on a URL, the local launcher."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from watchium_db import database, local, migrate
from watchium_db.errors import SetupError

CLI = Path(sys.executable).with_name("watchium-db")
REAL_BINDIR = local.find_bindir()


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No URL, no bindir override, and a data folder of this test's own."""
    for name in (database.URL_ENV, database.TEST_URL_ENV, "WATCHIUM_PG_BINDIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WATCHIUM_DATA_DIR", str(tmp_path / "pgdata"))
    return monkeypatch


@pytest.fixture
def no_binaries(clean_env, tmp_path):
    """A machine without PostgreSQL: nothing on PATH, no install folders, an empty override."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    clean_env.setenv("PATH", str(empty))
    clean_env.setenv("WATCHIUM_PG_BINDIR", str(empty))
    clean_env.setattr(local, "_INSTALL_GLOBS", ())
    clean_env.setattr(local.shutil, "which", lambda name, *a, **k: None)
    return clean_env


# ---------------------------------------------------------------------------------------------
# choose_backend / resolve
# ---------------------------------------------------------------------------------------------
def test_url_env_wins_over_local_binaries(clean_env):
    clean_env.setenv(database.URL_ENV, "postgres://app@db.example:5432/watch")
    assert database.choose_backend() == "url"
    db = database.resolve(start=False)
    assert (db.backend, db.url) == ("url", "postgresql://app@db.example:5432/watch")
    assert database.URL_ENV in db.description


def test_url_env_wins_even_without_binaries(no_binaries):
    no_binaries.setenv(database.URL_ENV, "postgresql://app@db.example/watch")
    assert database.choose_backend() == "url"


def test_test_suite_reads_its_own_url_variable(clean_env):
    clean_env.setenv(database.URL_ENV, "postgresql://app@prod.example/watch")
    assert database.choose_backend(url_env=database.TEST_URL_ENV) == "local"


def test_local_binaries_are_found(clean_env):
    assert database.choose_backend() == "local"
    db = database.resolve(start=False)
    assert db.backend == "local" and db.url.startswith("postgresql://postgres@127.0.0.1:")
    assert str(Path(os.environ["WATCHIUM_DATA_DIR"])) in db.description


def test_find_bindir_honours_watchium_pg_bindir(clean_env, tmp_path):
    # A folder of our own that holds the server binaries (links to the real ones).
    mine = tmp_path / "my-postgres" / "bin"
    mine.mkdir(parents=True)
    for tool in ("postgres", "initdb", "pg_ctl"):
        (mine / tool).symlink_to(REAL_BINDIR / tool)
    clean_env.setenv("WATCHIUM_PG_BINDIR", str(mine))
    assert local.find_bindir() == mine


def test_find_bindir_skips_an_invalid_override(clean_env, tmp_path):
    bogus = tmp_path / "not-postgres"
    bogus.mkdir()
    (bogus / "postgres").write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 9.6'\n")
    (bogus / "postgres").chmod(0o755)
    clean_env.setenv("WATCHIUM_PG_BINDIR", str(bogus))
    found = local.find_bindir()
    assert found != bogus and (found / "initdb").exists()


def test_no_binaries_but_docker_answers_means_docker(no_binaries):
    with pytest.raises(SetupError):
        local.find_bindir()
    no_binaries.setattr(database, "docker_available", lambda: True)
    assert database.choose_backend() == "docker"
    sentinel = database.Database("postgresql://c@127.0.0.1:1/x", "docker", "fake container")
    no_binaries.setattr(database, "start_docker", lambda: sentinel)  # never start a container
    assert database.resolve() is sentinel


def test_no_binaries_and_no_docker_says_what_to_install(no_binaries):
    no_binaries.setattr(database, "docker_available", lambda: False)
    with pytest.raises(SetupError) as exc:
        database.choose_backend()
    assert "no PostgreSQL 15+ server binaries" in exc.value.message
    assert "no Docker engine" in exc.value.message
    hint = exc.value.hint or ""
    assert "apt-get install postgresql-15" in hint and "brew install postgresql@15" in hint
    assert database.URL_ENV in hint and "Docker" in hint


def test_cli_prints_the_setup_hint(no_binaries, capsys):
    no_binaries.setattr(database, "docker_available", lambda: False)
    from watchium_db import cli

    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("watchium-db: error: no database")
    assert err[1].startswith("hint: ") and "apt-get install postgresql-15" in err[1]


# ---------------------------------------------------------------------------------------------
# the CLI against a URL
# ---------------------------------------------------------------------------------------------
def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=120)


def url_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHIUM_")}
    env[database.URL_ENV] = url
    return env


def test_cli_status_json_on_a_url(watchium_db_url):
    proc = run_cli("status", "--json", env=url_env(watchium_db_url))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["backend"] == "url" and report["url"] == watchium_db_url
    assert report["current"] == report["head"] == migrate.head_revision()
    assert report["up_to_date"] is True


def test_cli_up_on_a_url_migrates_it_idempotently(empty_db_url):
    assert migrate.current_revision(empty_db_url) is None
    for _ in range(2):
        proc = run_cli("up", env=url_env(empty_db_url))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [empty_db_url]
        assert migrate.current_revision(empty_db_url) == migrate.head_revision()


# ---------------------------------------------------------------------------------------------
# the local launcher, end to end
# ---------------------------------------------------------------------------------------------
def test_local_launcher_up_status_down():
    # Under /tmp rather than pytest's tmp_path: as root the server runs as another user, who
    # must be able to reach the folder (pytest's base folder is private to root).
    root = Path(tempfile.mkdtemp(prefix="watchium-launcher-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHIUM_")}
    env["WATCHIUM_DATA_DIR"] = str(root / "pgdata")
    try:
        first = run_cli("up", env=env)
        assert first.returncode == 0, first.stderr
        second = run_cli("up", env=env)
        assert second.returncode == 0, second.stderr
        assert first.stdout == second.stdout and first.stdout.startswith("postgresql://")

        status = run_cli("status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["backend"] == "local" and report["url"] == first.stdout.strip()
        assert report["up_to_date"] is True and str(root / "pgdata") in report["where"]

        if os.geteuid() == 0:
            owner = pwd.getpwuid((root / "pgdata").stat().st_uid).pw_name
            assert owner == local._server_os_user() and owner != "root"

        down = run_cli("down", env=env)
        assert down.returncode == 0 and "stopped the local server" in down.stdout
        again = run_cli("down", env=env)
        assert again.returncode == 0 and "was not running" in again.stdout
    finally:
        run_cli("down", env=env)
        shutil.rmtree(root, ignore_errors=True)
