"""A local PostgreSQL server started from the binaries installed on this machine.

This is the embedded default backend: when no database URL is configured, the CLI, Alembic and
the test suite start (or reuse) a private server in a data folder of their own, listening on
127.0.0.1 only, with ``wal_level=logical`` so the realtime publication can be decoded.

PostgreSQL refuses to run as root. When the current process is root, the server runs as an
unprivileged OS user (``WATCHIUM_PG_OS_USER``, default ``postgres``, else ``nobody``) and every
server command is re-run through ``runuser``; a normal user runs the server as themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from watchium_db.errors import SetupError

#: The usual places PostgreSQL server binaries are installed, newest first.
_INSTALL_GLOBS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # macOS, Homebrew (Apple silicon)
    "/usr/local/opt/postgresql@*/bin",  # macOS, Homebrew (Intel)
    "/Applications/Postgres.app/Contents/Versions/*/bin",
    "/usr/local/pgsql/bin",  # source builds
)

MIN_SERVER_VERSION = 15
SUPERUSER = "postgres"
DATABASE = "watchium"
STATE_FILE = "watchium-server.json"


def default_data_dir() -> Path:
    """Where the embedded server keeps its files (``WATCHIUM_DATA_DIR`` overrides)."""
    env = os.environ.get("WATCHIUM_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if os.geteuid() == 0:
        # root's home is usually closed to other users; the server user must reach its folder.
        return Path("/var/lib/watchium-db/pgdata")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "watchium-db" / "pgdata"


def _version_of(bindir: Path) -> int | None:
    postgres = bindir / "postgres"
    if not postgres.exists():
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # "postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)"
    try:
        return int(out.split(")")[1].strip().split(".")[0])
    except (IndexError, ValueError):
        return None


def find_bindir() -> Path:
    """Find PostgreSQL 15+ server binaries: pg_config, PATH, then the usual install folders."""
    candidates: list[Path] = []
    env = os.environ.get("WATCHIUM_PG_BINDIR")
    if env:
        candidates.append(Path(env))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            candidates.append(Path(out))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    globbed: list[Path] = []
    for pattern in _INSTALL_GLOBS:
        globbed.extend(Path("/").glob(pattern.lstrip("/")))
    candidates.extend(sorted(globbed, key=lambda p: _version_of(p) or 0, reverse=True))
    for bindir in candidates:
        version = _version_of(bindir)
        if version is not None and version >= MIN_SERVER_VERSION and (bindir / "initdb").exists():
            return bindir
    raise SetupError(
        "no PostgreSQL 15+ server binaries found",
        hint=(
            "install the server (Debian/Ubuntu: apt-get install postgresql-15; macOS: "
            "brew install postgresql@15), or set WATCHIUM_PG_BINDIR, or set "
            "WATCHIUM_DATABASE_URL to an existing database"
        ),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_os_user() -> str | None:
    """The OS user that runs the server when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("WATCHIUM_PG_OS_USER"), "postgres", "nobody"):
        if not name:
            continue
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise SetupError(
        "running as root, but no unprivileged OS user exists to run PostgreSQL",
        hint="create one (useradd postgres) or set WATCHIUM_PG_OS_USER",
    )


@dataclass
class LocalServer:
    """A PostgreSQL server in ``data_dir``, listening on 127.0.0.1:``port``."""

    data_dir: Path
    bindir: Path
    port: int
    os_user: str | None

    @property
    def url(self) -> str:
        """The application database on this server."""
        return self.url_for(DATABASE)

    @property
    def maintenance_url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    # -- process helpers -----------------------------------------------------------------
    def _cmd(self, *argv: str) -> list[str]:
        if self.os_user is None:
            return list(argv)
        return ["runuser", "-u", self.os_user, "--", *argv]

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._cmd(*argv), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SetupError(
                f"{Path(argv[0]).name} failed: {(proc.stderr or proc.stdout).strip()}",
                hint=f"see the server log in {self.data_dir / 'server.log'}",
            )
        return proc

    def _chown(self, path: Path) -> None:
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- lifecycle -----------------------------------------------------------------------
    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        proc = subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)),
            capture_output=True,
            text=True,
        )
        return proc.returncode == 0

    def init(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.data_dir)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self, extra_options: tuple[str, ...] = ()) -> None:
        """Start the server; ``extra_options`` are further ``-c name=value`` settings."""
        log = self.data_dir / "server.log"
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories='{self.data_dir}'",
                "-c wal_level=logical",
                "-c max_replication_slots=10",
                "-c max_wal_senders=10",
                "-c max_connections=200",
                *(f"-c {option}" for option in extra_options),
            ]
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
        )

    def stop(self) -> None:
        if self.is_initialized() and self.is_running():
            self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast")

    def save_state(self) -> None:
        state = {"port": self.port, "bindir": str(self.bindir)}
        path = self.data_dir.parent / STATE_FILE
        path.write_text(json.dumps(state))

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SetupError(f"the local server did not accept connections on port {self.port}")


def _load_state(data_dir: Path) -> dict[str, object] | None:
    path = data_dir.parent / STATE_FILE
    if not path.exists():
        return None
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def server_for(data_dir: Path | None = None) -> LocalServer:
    """Describe the local server in ``data_dir`` (not started)."""
    data_dir = data_dir or default_data_dir()
    state = _load_state(data_dir) or {}
    port_value = state.get("port")
    port = int(port_value) if isinstance(port_value, int) else _free_port()
    return LocalServer(
        data_dir=data_dir, bindir=find_bindir(), port=port, os_user=_server_os_user()
    )


def ensure_running(data_dir: Path | None = None) -> LocalServer:
    """Start the local server in ``data_dir`` unless it already runs; idempotent."""
    server = server_for(data_dir)
    if server.os_user is not None:
        # The server user must be able to reach the folder that holds the data directory.
        server.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server._chown(server.data_dir.parent)
    if not server.is_initialized():
        server.init()
    if not server.is_running():
        if _port_taken(server.port):
            server.port = _free_port()
        server.start()
    server.save_state()
    server.wait_ready()
    _ensure_database(server)
    return server


def _ensure_database(server: LocalServer) -> None:
    import psycopg

    with psycopg.connect(server.maintenance_url, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_catalog.pg_database where datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{DATABASE}"')


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop(data_dir: Path | None = None) -> bool:
    """Stop the local server if it runs; return whether it was running."""
    data_dir = data_dir or default_data_dir()
    if not (data_dir / "PG_VERSION").exists():
        return False
    server = server_for(data_dir)
    running = server.is_running()
    server.stop()
    return running
