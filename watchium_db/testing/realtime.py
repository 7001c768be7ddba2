"""A stand-in for Supabase Realtime's database objects (schema ``realtime``), for tests.

``install_realtime_standin(conn)`` creates ``realtime.messages``, ``realtime.topic()`` and
``realtime.send(...)`` as documented by Supabase (see ``realtime_standin.sql``), unless the
database already has a ``realtime`` schema. ``realtime_topic(conn, topic)`` sets the
transaction-local ``realtime.topic`` the way Supabase Realtime does before it checks the
policies of ``realtime.messages``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

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
