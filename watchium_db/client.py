"""A small typed client for watchium-db's SQL functions, acting as a given user.

Every call is one transaction that sets the caller's identity exactly as PostgREST does
(transaction-local ``request.jwt.claims`` and ``set local role``), calls one SQL function and
returns its result. Nothing here re-implements logic of the database: authority, validation,
rate limits and sync computations all happen in SQL; the client only carries values and maps
errors to :mod:`watchium_db.errors` by SQLSTATE.

Results are frozen dataclasses: they add no dependency, are typed for mypy, and the database
has already validated every value, so there is nothing left for a validation library to do.

    client = Client("postgresql://…")               # or a psycopg ConnectionPool
    alice = client.as_user("alice")
    room = alice.create_room(title="Friday", anime_id="frieren", anime_title="Frieren",
                             episode_number=1, video_url="https://…", username="Alice")
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from watchium_db.errors import from_database_error

Row = dict[str, Any]


class _SyncPool(Protocol):
    def connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]: ...


class _AsyncPool(Protocol):
    def connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...


def claims_for(user_id: str | None, role: str, extra: Mapping[str, Any] | None = None) -> str:
    """The JWT claims PostgREST would set for this caller, as JSON text."""
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims["sub"] = user_id
    claims.update(extra or {})
    return json.dumps(claims)


ROLES = ("anon", "authenticated", "service_role")


def _call_sql(function: str, args: Mapping[str, Any]) -> str:
    if not function.replace("_", "").isalnum():
        raise ValueError(f"not a function name: {function!r}")
    named = ", ".join(f"{name} => %({name})s" for name in args)
    return f"select * from public.{function}({named})"


class Caller:
    """Calls watchium-db functions as one user (or anonymously, or as service_role)."""

    def __init__(
        self,
        source: psycopg.Connection[Any] | _SyncPool | str,
        user_id: str | None,
        role: str = "authenticated",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self._source = source
        self.user_id = user_id
        self.role = role

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if isinstance(self._source, str):
            with psycopg.connect(self._source) as conn:
                yield conn
        elif isinstance(self._source, psycopg.Connection):
            yield self._source
        else:
            with self._source.connection() as conn:
                yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction acting as this caller; identity ends with it."""
        with self._connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(
                        "select pg_catalog.set_config('request.jwt.claims', %s, true)",
                        (claims_for(self.user_id, self.role),),
                    )
                    conn.execute(f"set local role {self.role}")  # one of ROLES, checked above
                    yield conn
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None):
                    raise from_database_error(exc) from exc
                raise

    def call(self, function: str, **args: Any) -> list[Row]:
        """Call ``public.<function>`` with named arguments; return its rows as dicts."""
        with self.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_call_sql(function, args), args)
            return cur.fetchall()

    def call_one(self, function: str, **args: Any) -> Any:
        """Call a function that returns one value (a scalar or jsonb)."""
        rows = self.call(function, **args)
        if not rows:
            return None
        (value,) = rows[0].values() if len(rows[0]) == 1 else (rows[0],)
        return value


class AsyncCaller:
    """The asyncio form of :class:`Caller`."""

    def __init__(
        self,
        source: psycopg.AsyncConnection[Any] | _AsyncPool | str,
        user_id: str | None,
        role: str = "authenticated",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self._source = source
        self.user_id = user_id
        self.role = role

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if isinstance(self._source, str):
            async with await psycopg.AsyncConnection.connect(self._source) as conn:
                yield conn
        elif isinstance(self._source, psycopg.AsyncConnection):
            yield self._source
        else:
            async with self._source.connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "select pg_catalog.set_config('request.jwt.claims', %s, true)",
                        (claims_for(self.user_id, self.role),),
                    )
                    await conn.execute(f"set local role {self.role}")
                    yield conn
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None):
                    raise from_database_error(exc) from exc
                raise

    async def call(self, function: str, **args: Any) -> list[Row]:
        async with self.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_call_sql(function, args), args)
            return await cur.fetchall()

    async def call_one(self, function: str, **args: Any) -> Any:
        rows = await self.call(function, **args)
        if not rows:
            return None
        (value,) = rows[0].values() if len(rows[0]) == 1 else (rows[0],)
        return value
