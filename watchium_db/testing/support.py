"""The helpers behind the pytest plugin (:mod:`watchium_db.testing`): the test server, template
and per-test databases, ``as_user`` and ``make_room``. Imported when a fixture is first used,
so the plugin costs nothing in a pytest run that does not use it; ``from watchium_db.testing
import as_user`` keeps working."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import psycopg

from watchium_db import database, local, migrate

STANDIN_SQL = Path(__file__).with_name("supabase_standin.sql")
TEMPLATE_DB = "watchium_template"


@dataclass
class TestServer:
    """A server that tests may create databases on."""

    maintenance_url: str
    backend: str
    description: str

    __test__ = False  # not a test class

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.maintenance_url)
        return urlunsplit(parts._replace(path=f"/{dbname}"))


def _start_throwaway_local() -> tuple[local.LocalServer, Path]:
    server = local.throwaway("watchium-test-")
    root = server.server_dir
    # Tests favour speed over durability; behaviour is otherwise the same.
    with (server.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    server.start()
    server.wait_ready()
    return server, root


@contextlib.contextmanager
def test_server() -> Iterator[TestServer]:
    """Resolve the test server: WATCHIUM_TEST_DATABASE_URL, local binaries, then Docker."""
    backend = database.choose_backend(url_env=database.TEST_URL_ENV)
    if backend == "url":
        url = database.normalize_url(
            os.environ[database.TEST_URL_ENV], source=database.TEST_URL_ENV
        )
        yield TestServer(url, "url", f"${database.TEST_URL_ENV}")
    elif backend == "local":
        server, root = _start_throwaway_local()
        try:
            yield TestServer(server.maintenance_url, "local", f"throw-away server in {root}")
        finally:
            server.stop()
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    else:
        db = database.start_docker()
        try:
            yield TestServer(db.url, "docker", db.description)
        finally:
            db.handle.stop()


def password_of(url: str) -> str | None:
    """The password a URL authenticates with: its own, else the one in its ``passfile``
    (for tools that are not libpq, such as pgbouncer's server connections)."""
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    passfile = dict(parse_qsl(parts.query)).get("passfile")
    if not passfile:
        return None
    for line in Path(passfile).read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 5 and fields[3] in ("*", parts.username):
            return fields[4]
    return None


def drop_database(maintenance_url: str, dbname: str) -> None:
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(
            "select pg_catalog.pg_terminate_backend(pid) from pg_catalog.pg_stat_activity "
            "where datname = %s and pid <> pg_catalog.pg_backend_pid()",
            (dbname,),
        )
        conn.execute(f'drop database if exists "{dbname}"')


def create_database(server: TestServer, dbname: str, template: str | None = None) -> str:
    """Create ``dbname`` (optionally cloned from ``template``) and return its URL."""
    drop_database(server.maintenance_url, dbname)
    with psycopg.connect(server.maintenance_url, autocommit=True) as conn:
        if template:
            conn.execute(f'create database "{dbname}" template "{template}"')
        else:
            conn.execute(f'create database "{dbname}"')
    return server.url_for(dbname)


def install_supabase_standin(url: str) -> bool:
    """Install the Supabase stand-in unless the database already has an ``auth`` schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select 1 from pg_catalog.pg_namespace where nspname = 'auth'").fetchone():
            return False
        conn.execute(STANDIN_SQL.read_text().encode())
    return True


def build_template(server: TestServer, name: str = TEMPLATE_DB, revision: str = "head") -> str:
    url = create_database(server, name)
    install_supabase_standin(url)
    migrate.upgrade(url, revision)
    return name


@contextlib.contextmanager
def as_user(
    conn: psycopg.Connection[Any],
    user_id: str | None,
    *,
    role: str = "authenticated",
    claims: dict[str, Any] | None = None,
) -> Iterator[psycopg.Connection[Any]]:
    """Run the block in one transaction as ``user_id``, exactly as PostgREST would.

    Sets ``request.jwt.claims`` (with ``sub`` and ``role``) transaction-locally and switches to
    ``role``; both end with the transaction. ``user_id=None`` with ``role='anon'`` is an
    anonymous caller.
    """
    payload: dict[str, Any] = {"role": role}
    if user_id is not None:
        payload["sub"] = user_id
    payload.update(claims or {})
    with conn.transaction():
        conn.execute(
            "select pg_catalog.set_config('request.jwt.claims', %s, true)", (json.dumps(payload),)
        )
        conn.execute(f"set local role {role}")  # role is a fixed identifier chosen by the caller
        yield conn


# ---------------------------------------------------------------------------------------------
# factories: the real RPCs, called as the users they act for
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestRoom:
    """A room made by :func:`make_room`: its id, access key (private rooms) and member ids."""

    room_id: str
    host: str
    members: tuple[str, ...]
    access_key: str | None
    is_public: bool

    __test__ = False  # not a test class


def make_room(
    conn: psycopg.Connection[Any],
    *,
    host: str = "host",
    members: Iterable[str] = (),
    private: bool = False,
    anime_id: str = "a1",
    episode_number: int = 1,
    title: str = "Test room",
    video_url: str = "https://example.com/video.m3u8",
) -> TestRoom:
    """Create a room as ``host`` and join every member (with the key when ``private``).

    Calls ``public.create_room`` and ``public.join_room`` as those users, so triggers, events,
    presence rows and rate limits behave as in production. Usernames are the ids, title-cased.
    """
    from watchium_db.client import Session

    created = Session(conn, host).create_room(
        title=title, anime_id=anime_id, anime_title=anime_id.title(),
        episode_number=episode_number, video_url=video_url, username=host.title()[:50],
        is_public=not private,
    )  # fmt: skip
    room_id = created.room.room_id
    joined = []
    for user in members:
        result = Session(conn, user).join_room(
            room_id, access_key=created.access_key, username=user.title()[:50]
        )
        if not result.joined:
            raise RuntimeError(f"{user} could not join {room_id}: {result.status}")
        joined.append(user)
    return TestRoom(room_id, host, tuple(joined), created.access_key, not private)
