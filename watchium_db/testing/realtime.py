"""A stand-in for Supabase Realtime's database objects (schema ``realtime``), for tests.

``install_realtime_standin(conn)`` creates ``realtime.messages``, ``realtime.topic()`` and
``realtime.send(...)`` as documented by Supabase (see ``realtime_standin.sql``), unless the
database already has a ``realtime`` schema. ``realtime_topic(conn, topic)`` sets the
transaction-local ``realtime.topic`` the way Supabase Realtime does before it checks the
policies of ``realtime.messages``. ``refuse_policy_commands(conn, ...)`` makes the database
refuse ``CREATE POLICY`` and/or ``COMMENT ON POLICY`` on ``realtime.messages`` (42501), as a
Supabase image may refuse them to the migrating role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

REALTIME_STANDIN_SQL = Path(__file__).with_name("realtime_standin.sql")


def install_realtime_standin(conn: psycopg.Connection[Any]) -> bool:
    """Install the stand-in on ``conn``'s database; False when ``realtime`` already exists."""
    with conn.transaction():
        exists = conn.execute(
            "select 1 from pg_catalog.pg_namespace where nspname = 'realtime'"
        ).fetchone()
        if exists:
            return False
        conn.execute(REALTIME_STANDIN_SQL.read_text(encoding="utf-8").encode())
    return True


def realtime_topic(conn: psycopg.Connection[Any], topic: str) -> None:
    """Set ``realtime.topic`` for the current transaction, as Supabase Realtime does."""
    conn.execute("select pg_catalog.set_config('realtime.topic', %s, true)", (topic,))


def refuse_policy_commands(conn: psycopg.Connection[Any], *commands: str) -> None:
    """Refuse ``commands`` ('create policy', 'comment on policy') on realtime.messages in this
    database, for new sessions and this one; no commands lifts the refusals."""
    for command in commands:
        if command not in ("create policy", "comment on policy"):
            raise ValueError(f"unknown command {command!r}")
    value = ",".join(commands)
    dbname = conn.info.dbname
    with conn.transaction():
        conn.execute(
            psycopg.sql.SQL("alter database {} set watchium_standin.refuse = {}").format(
                psycopg.sql.Identifier(dbname), psycopg.sql.Literal(value)
            )
        )
        conn.execute("select pg_catalog.set_config('watchium_standin.refuse', %s, false)", (value,))
