"""A local PostgreSQL server started from the binaries installed on this machine.

This is the embedded default backend: when no database URL is configured, ``watchium-db up`` and
``watchium-db demo`` (and the test suite, with a throw-away one) start a private server, listening
on 127.0.0.1 only, with ``wal_level=logical`` so the realtime publication can be decoded. Other
commands use the server when it runs and never start it.

The server folder (``WATCHIUM_DATA_DIR``, see :func:`default_server_dir`) holds::

    watchium-server.json   marks the folder as ours; the port and binaries last used
    passfile               the superuser's generated password, mode 0600 (libpq passfile format)
    pgdata/                the cluster, created by us (owned by the server's OS user)

Nothing is chowned or chmodded that we did not create, and a non-empty folder without the marker
is refused. Every connection authenticates with scram-sha-256 (pg_hba has no ``trust``): URLs
carry ``passfile=<folder>/passfile``, never the password. A running server is adopted only after
checking that ``postmaster.pid`` names a live server of this data directory that accepts our
password.

PostgreSQL refuses to run as root. When the current process is root, the server runs as an
unprivileged OS user (``WATCHIUM_PG_OS_USER``, default ``postgres``, else ``nobody``) and every
server command is re-run through ``runuser``; a normal user runs the server as themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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
PASSFILE = "passfile"
DATA_SUBDIR = "pgdata"
BINDIR_ENV = "WATCHIUM_PG_BINDIR"
DATA_DIR_ENV = "WATCHIUM_DATA_DIR"


def default_server_dir() -> Path:
    """The server folder (``WATCHIUM_DATA_DIR`` overrides); the cluster is its ``pgdata/``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    if os.geteuid() == 0:
        # root's home is usually closed to other users; the server user must reach its folder.
        return Path("/var/lib/watchium-db")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "watchium-db"


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


def _usable(bindir: Path) -> bool:
    version = _version_of(bindir)
    return (
        version is not None
        and version >= MIN_SERVER_VERSION
        and (bindir / "initdb").exists()
        and (bindir / "pg_ctl").exists()
    )


def find_bindir() -> Path:
    """Find PostgreSQL 15+ server binaries: ``WATCHIUM_PG_BINDIR`` (which must hold them),
    else pg_config, PATH, then the usual install folders."""
    env = os.environ.get(BINDIR_ENV)
    if env:
        if _usable(Path(env)):
            return Path(env)
        raise SetupError(
            f"{BINDIR_ENV}={env} holds no PostgreSQL {MIN_SERVER_VERSION}+ server binaries "
            "(postgres, initdb, pg_ctl)",
            hint=f"point {BINDIR_ENV} at the server's bin folder, or unset it to search "
            "the usual places",
        )
    candidates: list[Path] = []
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
        if _usable(bindir):
            return bindir
    raise SetupError(
        "no PostgreSQL 15+ server binaries found",
        hint=(
            "install the server (Debian/Ubuntu: apt-get install postgresql-15; macOS: "
            f"brew install postgresql@15), or set {BINDIR_ENV}, or set "
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> list[str] | None:
    """The process's command line where /proc tells it (Linux); None when unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


@dataclass
class LocalServer:
    """A PostgreSQL server whose cluster is ``server_dir/pgdata``, on 127.0.0.1:``port``."""

    server_dir: Path
    bindir: Path
    port: int
    os_user: str | None

    @property
    def data_dir(self) -> Path:
        return self.server_dir / DATA_SUBDIR

    @property
    def passfile(self) -> Path:
        return self.server_dir / PASSFILE

    @property
    def url(self) -> str:
        """The application database on this server."""
        return self.url_for(DATABASE)

    @property
    def maintenance_url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """A libpq URL; the password comes from the passfile and is never in the URL."""
        passfile = quote(str(self.passfile), safe="/")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}?passfile={passfile}"

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
        """Give the server's OS user a path we created (never one we did not)."""
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- the folder ------------------------------------------------------------------------
    def is_ours(self) -> bool:
        return (self.server_dir / STATE_FILE).is_file()

    def claim_folder(self) -> None:
        """Make ``server_dir`` ours: create it, or take an empty one; refuse anything else.
        Nothing we did not create has its owner or mode changed."""
        folder = self.server_dir
        if not folder.exists():
            folder.mkdir(parents=True)
            # Private for a user's own server; as root the server user must traverse it to
            # reach pgdata/ (0700, its own), while the passfile stays 0600 root's.
            folder.chmod(0o711 if self.os_user is not None else 0o700)
        elif not folder.is_dir():
            raise SetupError(f"{folder} is not a folder", hint=f"set {DATA_DIR_ENV} to a folder")
        elif not self.is_ours() and any(folder.iterdir()):
            raise SetupError(
                f"{folder} is not empty and is not a watchium-db server folder",
                hint=f"set {DATA_DIR_ENV} to a new or empty folder; the cluster goes into its "
                f"{DATA_SUBDIR}/ subfolder",
            )
        if self.is_ours() and self.data_dir.exists() and not self.passfile.exists():
            raise SetupError(
                f"{self.data_dir} was made by an earlier watchium-db without authentication",
                hint=f"stop it and remove {folder} (its data too), then run `watchium-db up`",
            )
        if self.os_user is not None:
            reach = subprocess.run(
                ["runuser", "-u", self.os_user, "--", "test", "-x", str(folder)],
                capture_output=True,
            )
            if reach.returncode != 0:
                raise SetupError(
                    f"the server's OS user {self.os_user} cannot reach {folder}",
                    hint=f"set {DATA_DIR_ENV} to a folder it can traverse, or to a new one "
                    "(watchium-db creates it so that it can)",
                )
        self.save_state()

    # -- lifecycle -----------------------------------------------------------------------
    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster in ``pgdata/`` with a generated superuser password (scram)."""
        self.claim_folder()
        self.data_dir.mkdir(mode=0o700, exist_ok=True)  # left empty by a failed initdb: ours
        self._chown(self.data_dir)
        password = secrets.token_urlsafe(32)
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"127.0.0.1:*:*:{SUPERUSER}:{password}\n")
        os.chmod(self.passfile, 0o600)
        # initdb (as the server user) reads the password from a file of its own.
        pwfile = self.server_dir / f".initdb-{secrets.token_hex(8)}"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            self._chown(pwfile)
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, extra_options: tuple[str, ...] = ()) -> None:
        """Start the server; ``extra_options`` are further ``-c name=value`` settings."""
        log = self.data_dir / "server.log"
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories='{self.data_dir}'",
                "-c password_encryption=scram-sha-256",
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

    def _postmaster(self) -> tuple[int, int] | None:
        """(pid, port) from ``postmaster.pid``, when it exists and reads well."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def _answers_as_ours(self, port: int) -> bool:
        """Whether the server on ``port`` accepts our password and serves our data directory."""
        import psycopg

        probe = LocalServer(self.server_dir, self.bindir, port, self.os_user)
        try:
            with psycopg.connect(probe.maintenance_url, connect_timeout=5) as conn:
                row = conn.execute("select pg_catalog.current_setting('data_directory')").fetchone()
        except psycopg.Error:
            return False
        return row is not None and Path(str(row[0])).resolve() == self.data_dir.resolve()

    def find_running(self, *, clear_stale: bool = False) -> bool:
        """Whether our server runs (then ``port`` is its port). A ``postmaster.pid`` whose
        process is gone, or is not a PostgreSQL server of this data directory, is stale: it is
        removed when ``clear_stale`` (so the server can start), never adopted."""
        found = self._postmaster()
        if found is None:
            return False
        pid, port = found
        cmdline = _cmdline(pid) if _pid_alive(pid) else []
        if cmdline is not None and not self._is_our_postmaster(cmdline):
            if clear_stale:
                (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
            return False
        if self._answers_as_ours(port):
            self.port = port
            return True
        raise SetupError(
            f"postmaster.pid in {self.data_dir} names process {pid}, which does not answer as "
            f"this server on port {port}",
            hint="if no server runs on this data directory, remove that postmaster.pid",
        )

    def _is_our_postmaster(self, cmdline: list[str]) -> bool:
        if not cmdline or Path(cmdline[0]).name not in ("postgres", "postmaster"):
            return False
        with contextlib.suppress(ValueError, IndexError):
            given = Path(cmdline[cmdline.index("-D") + 1])
            return given.resolve() == self.data_dir.resolve()
        return False

    def stop(self) -> None:
        """Stop the server (one we started ourselves, e.g. a throw-away test server)."""
        if self._postmaster() is not None:
            self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast")

    def save_state(self) -> None:
        state = {"port": self.port, "bindir": str(self.bindir)}
        (self.server_dir / STATE_FILE).write_text(json.dumps(state))

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SetupError(f"the local server did not accept connections on port {self.port}")


def _load_state(server_dir: Path) -> dict[str, object] | None:
    path = server_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def server_for(server_dir: Path | None = None) -> LocalServer:
    """Describe the local server of ``server_dir`` (nothing is created or started)."""
    server_dir = server_dir or default_server_dir()
    state = _load_state(server_dir) or {}
    port_value = state.get("port")
    port = int(port_value) if isinstance(port_value, int) else _free_port()
    return LocalServer(
        server_dir=server_dir, bindir=find_bindir(), port=port, os_user=_server_os_user()
    )


def throwaway(prefix: str = "watchium-") -> LocalServer:
    """A new, initialized (not started) server in a fresh temporary folder, on a free port.
    The caller stops it and removes ``server_dir``."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = LocalServer(root, find_bindir(), _free_port(), _server_os_user())
    if server.os_user is not None:
        root.chmod(0o711)  # our own folder: the server user traverses it to reach pgdata/
    server.init()
    return server


def ensure_running(server_dir: Path | None = None) -> LocalServer:
    """Start the local server unless ours already runs; idempotent. Only ``up`` and ``demo``
    call this."""
    server = server_for(server_dir)
    server.claim_folder()
    if not server.is_initialized():
        server.init()
    if not server.find_running(clear_stale=True):
        if _port_taken(server.port):
            server.port = _free_port()
        server.start()
    server.save_state()
    server.wait_ready()
    _ensure_database(server)
    return server


def running_server(server_dir: Path | None = None) -> LocalServer:
    """The local server when ours runs; otherwise SetupError saying how to start it."""
    server = server_for(server_dir)
    if server.is_ours() and server.is_initialized() and server.find_running():
        return server
    raise SetupError(
        f"no server running in {server.server_dir}",
        hint="`watchium-db up` starts it (or set WATCHIUM_DATABASE_URL to another database)",
    )


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


def stop(server_dir: Path | None = None) -> bool:
    """Stop our local server if it runs; return whether it was running. A server that is not
    verified as ours is never signalled."""
    server_dir = server_dir or default_server_dir()
    if not (server_dir / DATA_SUBDIR / "PG_VERSION").exists():
        return False
    server = server_for(server_dir)
    if not server.find_running():
        return False
    server.stop()
    return True
