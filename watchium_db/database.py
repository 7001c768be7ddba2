"""Where the database comes from: one resolution order for the CLI, Alembic and the tests.

1. An explicit URL: ``WATCHIUM_DATABASE_URL`` (the test suite reads
   ``WATCHIUM_TEST_DATABASE_URL``) — any reachable PostgreSQL 15+, a Supabase project included.
2. Otherwise the embedded local server (:mod:`watchium_db.local`), started on demand from the
   PostgreSQL binaries installed on this machine.
3. Otherwise, when a Docker engine answers, a PostgreSQL container from testcontainers.
4. Otherwise :class:`~watchium_db.errors.SetupError` saying what to install.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

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


def normalize_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs too and return a plain libpq URL."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


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
        url=normalize_url(container.get_connection_url()),
        backend="docker",
        description=f"Docker container {DOCKER_IMAGE}",
        handle=container,
    )


def resolve(*, url_env: str = URL_ENV, start: bool = True) -> Database:
    """Resolve the database by the documented order; start the local server when needed."""
    backend = choose_backend(url_env=url_env)
    if backend == "url":
        url = normalize_url(os.environ[url_env])
        return Database(url=url, backend="url", description=f"${url_env}")
    if backend == "local":
        server = local.ensure_running() if start else local.server_for()
        return Database(
            url=server.url,
            backend="local",
            description=f"local server in {server.data_dir}",
            handle=server,
        )
    return start_docker()
