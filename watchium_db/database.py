"""Where the database comes from: one resolution order for the CLI, Alembic and the tests.

1. An explicit URL: ``WATCHIUM_DATABASE_URL`` (the test suite reads
   ``WATCHIUM_TEST_DATABASE_URL``) — any reachable PostgreSQL 15+, a Supabase project included.
2. Otherwise the embedded local server (:mod:`watchium_db.local`), from the PostgreSQL binaries
   installed on this machine: ``watchium-db up`` and ``demo`` start it, other commands use it
   when it runs.
3. Otherwise, when a Docker engine answers, a PostgreSQL container from testcontainers.
4. Otherwise :class:`~watchium_db.errors.SetupError` saying what to install.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from watchium_db import local
from watchium_db.errors import SetupError

Backend = Literal["url", "local", "docker"]

URL_ENV = "WATCHIUM_DATABASE_URL"
TEST_URL_ENV = "WATCHIUM_TEST_DATABASE_URL"
DOCKER_IMAGE = "postgres:15"


@dataclass
class Database:
    """A resolved database: its SQLAlchemy-free libpq URL and where it comes from."""

    url: str
    backend: Backend
    description: str
    handle: Any = None  # the LocalServer or the running container, when we own one


#: Schemes taken as PostgreSQL: libpq's two, and SQLAlchemy's spelling of them.
_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def normalize_url(url: str, *, source: str = "the database URL") -> str:
    """Check that ``url`` is a PostgreSQL URL (``postgresql://`` or ``postgres://``; SQLAlchemy's
    ``postgresql+psycopg://`` too) and return it as a plain libpq URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        shown = f"scheme '{scheme}'" if sep else "no scheme"
        raise SetupError(
            f"{source} must be a postgresql:// URL, got {shown}: {redact_url(url)}",
            hint="write it as postgresql://user:password@host:port/dbname",
        )
    return "postgresql://" + rest


def redact_url(url: str) -> str:
    """``url`` with any password masked (``user:***@host``, ``password=***``), for printing."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(?<=:)[^:@/]*(?=@)", "***", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostinfo}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy with the psycopg 3 driver."""
    return "postgresql+psycopg://" + normalize_url(url)[len("postgresql://") :]


def docker_available() -> bool:
    """Whether a Docker engine answers (not merely whether the client is installed)."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:
        return False
    return True


def choose_backend(*, url_env: str = URL_ENV) -> Backend:
    """Decide which backend the resolution order picks, without starting anything."""
    if os.environ.get(url_env):
        return "url"
    if os.environ.get(local.BINDIR_ENV):
        local.find_bindir()  # an override that points nowhere is an error, not "no binaries"
        return "local"
    try:
        local.find_bindir()
    except SetupError:
        if docker_available():
            return "docker"
        raise SetupError(
            "no database: no URL is set, no PostgreSQL 15+ server binaries were found "
            "and no Docker engine answers",
            hint=(
                f"set {url_env}=postgresql://…, or install PostgreSQL 15+ server binaries "
                "(Debian/Ubuntu: apt-get install postgresql-15; macOS: brew install "
                "postgresql@15), or start Docker"
            ),
        ) from None
    return "local"


def start_docker() -> Database:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(DOCKER_IMAGE, driver=None).with_command(
        "postgres -c wal_level=logical -c max_connections=200"
    )
    container.start()
    return Database(
        url=normalize_url(container.get_connection_url(), source="the container's URL"),
        backend="docker",
        description=f"Docker container {DOCKER_IMAGE}",
        handle=container,
    )


def resolve(*, url_env: str = URL_ENV, start: bool = False) -> Database:
    """Resolve the database by the documented order. The local server is started only with
    ``start=True`` (``watchium-db up`` and ``demo``); otherwise it must be running, else
    SetupError says how to start it. Docker is used only with ``start=True`` too."""
    backend = choose_backend(url_env=url_env)
    if backend == "url":
        url = normalize_url(os.environ[url_env], source=url_env)
        return Database(url=url, backend="url", description=f"${url_env}")
    if backend == "local":
        server = local.ensure_running() if start else local.running_server()
        return Database(
            url=server.url,
            backend="local",
            description=f"local server in {server.server_dir}",
            handle=server,
        )
    if not start:
        raise SetupError(
            "no database running: no URL is set and no local PostgreSQL binaries were found",
            hint=f"set {url_env}=postgresql://…, or `watchium-db up` to start one",
        )
    return start_docker()
