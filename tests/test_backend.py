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
from urllib.parse import urlsplit

import psycopg
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
    monkeypatch.setenv("WATCHIUM_DATA_DIR", str(tmp_path / "server"))
    return monkeypatch


@pytest.fixture
def no_binaries(clean_env, tmp_path):
    """A machine without PostgreSQL: nothing on PATH, no install folders, no override."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    clean_env.setenv("PATH", str(empty))
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


def test_local_binaries_are_found_but_only_up_starts_a_server(clean_env, capsys):
    assert database.choose_backend() == "local"
    with pytest.raises(SetupError, match="no server running") as exc:
        database.resolve()
    assert "watchium-db up" in (exc.value.hint or "")
    from watchium_db import cli

    for command in (["status"], ["doctor"], ["maintain"], ["upgrade"]):
        assert cli.main(command) == 1
        err = capsys.readouterr().err
        assert "no server running" in err and "watchium-db up" in err, command
    # Nothing was created: no folder, no cluster.
    assert not Path(os.environ["WATCHIUM_DATA_DIR"]).exists()


def test_find_bindir_honours_watchium_pg_bindir(clean_env, tmp_path):
    # A folder of our own that holds the server binaries (links to the real ones).
    mine = tmp_path / "my-postgres" / "bin"
    mine.mkdir(parents=True)
    for tool in ("postgres", "initdb", "pg_ctl"):
        (mine / tool).symlink_to(REAL_BINDIR / tool)
    clean_env.setenv("WATCHIUM_PG_BINDIR", str(mine))
    assert local.find_bindir() == mine


def test_an_invalid_bindir_override_is_an_error(clean_env, tmp_path, capsys):
    bogus = tmp_path / "not-postgres"
    bogus.mkdir()
    (bogus / "postgres").write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 9.6'\n")
    (bogus / "postgres").chmod(0o755)
    for override in (bogus, tmp_path / "nowhere"):
        clean_env.setenv("WATCHIUM_PG_BINDIR", str(override))
        with pytest.raises(SetupError, match="WATCHIUM_PG_BINDIR"):
            local.find_bindir()
        with pytest.raises(SetupError, match="WATCHIUM_PG_BINDIR"):
            database.choose_backend()
        from watchium_db import cli

        assert cli.main(["up"]) == 1
        assert f"WATCHIUM_PG_BINDIR={override} holds no PostgreSQL" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/db", "localhost:5432/db", "http://x@y/z", "host=db user=a"]
)
def test_a_url_that_is_not_postgresql_is_refused(clean_env, url, capsys):
    clean_env.setenv(database.URL_ENV, url)
    with pytest.raises(SetupError, match="must be a postgresql:// URL"):
        database.resolve()
    from watchium_db import cli

    assert cli.main(["status"]) == 1
    assert f"{database.URL_ENV} must be a postgresql:// URL" in capsys.readouterr().err


def test_urls_are_printed_without_passwords(clean_env, capsys):
    assert database.redact_url("postgresql://app:s3cret@db.example:5432/w?sslmode=require") == (
        "postgresql://app:***@db.example:5432/w?sslmode=require"
    )
    assert database.redact_url("postgresql://app@db.example/w?password=s3cret&x=1") == (
        "postgresql://app@db.example/w?password=***&x=1"
    )
    assert database.redact_url("postgresql://app@db.example/w") == "postgresql://app@db.example/w"
    clean_env.setenv(database.URL_ENV, "mysql://root:s3cret@localhost/db")
    from watchium_db import cli

    assert cli.main(["status"]) == 1
    assert "s3cret" not in capsys.readouterr().err


def test_no_binaries_but_docker_answers_means_docker(no_binaries):
    with pytest.raises(SetupError):
        local.find_bindir()
    no_binaries.setattr(database, "docker_available", lambda: True)
    assert database.choose_backend() == "docker"
    sentinel = database.Database("postgresql://c@127.0.0.1:1/x", "docker", "fake container")
    no_binaries.setattr(database, "start_docker", lambda: sentinel)  # never start a container
    assert database.resolve(start=True) is sentinel
    with pytest.raises(SetupError, match="no database running"):
        database.resolve()


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
def _launcher_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHIUM_")}
    env["WATCHIUM_DATA_DIR"] = str(folder)
    return env


@pytest.fixture
def shared_tmp():
    """A folder under /tmp rather than pytest's tmp_path: as root the server runs as another
    user, who must be able to traverse to its folder (pytest's base folder is private)."""
    root = Path(tempfile.mkdtemp(prefix="watchium-launcher-"))
    root.chmod(0o755)
    yield root
    for server in root.iterdir():
        if (server / local.STATE_FILE).exists():
            run_cli("down", env=_launcher_env(server))
    shutil.rmtree(root, ignore_errors=True)


def test_local_launcher_up_status_down(shared_tmp):
    folder = shared_tmp / "server"
    env = _launcher_env(folder)
    first = run_cli("up", env=env)
    assert first.returncode == 0, first.stderr
    second = run_cli("up", env=env)
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout and first.stdout.startswith("postgresql://")

    status = run_cli("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["backend"] == "local" and report["url"] == first.stdout.strip()
    assert report["up_to_date"] is True and str(folder) in report["where"]
    assert Path(report["alembic_ini"]).is_file()

    # The cluster is the folder's pgdata/, owned by the server's OS user; the folder we were
    # given a parent of is left as it was.
    assert (folder / "pgdata" / "PG_VERSION").exists()
    assert oct(shared_tmp.stat().st_mode & 0o777) == oct(0o755)
    assert shared_tmp.stat().st_uid == os.geteuid()
    if os.geteuid() == 0:
        owner = pwd.getpwuid((folder / "pgdata").stat().st_uid).pw_name
        assert owner == local._server_os_user() and owner != "root"

    down = run_cli("down", env=env)
    assert down.returncode == 0 and "stopped the local server" in down.stdout
    again = run_cli("down", env=env)
    assert again.returncode == 0 and "was not running" in again.stdout
    stopped = run_cli("status", env=env)
    assert stopped.returncode == 1 and "no server running" in stopped.stderr


def test_local_server_authenticates_every_connection(shared_tmp):
    folder = shared_tmp / "server"
    up = run_cli("up", env=_launcher_env(folder))
    assert up.returncode == 0, up.stderr
    url = up.stdout.strip()
    assert "passfile=" in url and ":" not in urlsplit(url).netloc.split("@")[0]
    passfile = folder / local.PASSFILE
    assert passfile.stat().st_mode & 0o777 == 0o600
    hba = [
        line.split()
        for line in (folder / "pgdata" / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert hba and all(fields[-1] == "scram-sha-256" for fields in hba), hba
    # With the passfile: in. Without it (any other account on the machine): refused.
    with psycopg.connect(url) as conn:
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    port = urlsplit(url).port
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres?passfile={os.devnull}"
        ).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            f"postgresql://postgres:guess@127.0.0.1:{port}/postgres?passfile={os.devnull}"
        ).close()


def test_a_folder_that_is_not_ours_is_refused_and_left_alone(shared_tmp):
    foreign = shared_tmp / "photos"
    foreign.mkdir(mode=0o750)
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    before = foreign.stat()
    up = run_cli("up", env=_launcher_env(foreign))
    assert up.returncode == 1
    assert "is not empty and is not a watchium-db server folder" in up.stderr
    after = foreign.stat()
    assert (after.st_uid, after.st_gid, after.st_mode) == (
        before.st_uid,
        before.st_gid,
        before.st_mode,
    )
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]


def test_an_empty_folder_is_used_without_changing_its_owner_or_mode(shared_tmp):
    given = shared_tmp / "given"
    given.mkdir(mode=0o755)
    given.chmod(0o755)
    up = run_cli("up", env=_launcher_env(given))
    assert up.returncode == 0, up.stderr
    assert given.stat().st_uid == os.geteuid() and given.stat().st_mode & 0o777 == 0o755
    assert (given / "pgdata" / "PG_VERSION").exists()


def test_a_stale_postmaster_pid_is_never_adopted(shared_tmp):
    folder = shared_tmp / "server"
    env = _launcher_env(folder)
    assert run_cli("up", env=env).returncode == 0
    assert run_cli("down", env=env).returncode == 0
    # Another server now listens where ours used to, and the old postmaster.pid names a live
    # process that is not a server of ours.
    other = local.throwaway("watchium-other-")
    other.start()
    unrelated = subprocess.Popen(["sleep", "300"])
    try:
        pid_file = folder / "pgdata" / "postmaster.pid"
        pid_file.write_text(
            f"{unrelated.pid}\n{folder / 'pgdata'}\n1700000000\n{other.port}\n"
            f"{folder / 'pgdata'}\n127.0.0.1\n  1234  5678\nready   \n"
        )
        (folder / local.STATE_FILE).write_text(json.dumps({"port": other.port}))
        # Commands that only use a running server say none runs; down signals nobody.
        status = run_cli("status", env=env)
        assert status.returncode == 1 and "no server running" in status.stderr
        assert run_cli("down", env=env).stdout.strip() == "the local server was not running"
        assert unrelated.poll() is None
        # up starts our own server instead of adopting the other one.
        up = run_cli("up", env=env)
        assert up.returncode == 0, up.stderr
        assert urlsplit(up.stdout.strip()).port != other.port
        with psycopg.connect(other.maintenance_url) as conn:
            made = conn.execute(
                "select count(*) from pg_catalog.pg_database where datname = %s",
                (local.DATABASE,),
            ).fetchone()
        assert made == (0,)
        with psycopg.connect(up.stdout.strip()) as conn:
            data_dir = conn.execute("select current_setting('data_directory')").fetchone()
        assert data_dir is not None and Path(data_dir[0]) == (folder / "pgdata").resolve()
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        other.stop()
        shutil.rmtree(other.server_dir, ignore_errors=True)
