"""docs/schema.md is generated from the catalog and kept current."""

from __future__ import annotations

from pathlib import Path

from watchium_db.devtools import schema_docs

DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"


def test_schema_reference_is_current(conn):
    assert DOC.read_text() == schema_docs.render(conn), "docs/schema.md is stale: run `make docs`"


def test_schema_reference_notices_a_change(conn):
    conn.execute("comment on table public.rooms is 'changed'")
    assert DOC.read_text() != schema_docs.render(conn)


def test_reference_names_every_table_and_function(conn):
    text = schema_docs.render(conn)
    for (name,) in conn.execute(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('public', 'watchium_private') and c.relkind in ('r', 'p')"
        " and not c.relispartition and c.relname <> 'alembic_version'"
    ):
        assert f"### `{name}`" in text
    for (name,) in conn.execute(
        "select n.nspname || '.' || p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'watchium_private')"
    ):
        assert f"`{name}(" in text
    assert "erDiagram" in text


def test_every_object_is_described_in_the_catalog(conn):
    """Document twice: every table, column, function and policy has a `comment on`."""
    missing = conn.execute(
        """
        select 'table ' || c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('public', 'watchium_private') and c.relkind in ('r', 'p')
           and not c.relispartition and c.relname <> 'alembic_version'
           and obj_description(c.oid, 'pg_class') is null
        union all
        select 'column ' || c.oid::regclass || '.' || a.attname
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
         where n.nspname in ('public', 'watchium_private') and c.relkind in ('r', 'p')
           and not c.relispartition and c.relname <> 'alembic_version'
           and col_description(c.oid, a.attnum) is null
        union all
        select 'function ' || p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('public', 'watchium_private', 'watchium_rpc') and obj_description(p.oid, 'pg_proc') is null
        union all
        select 'policy ' || polname from pg_policy where obj_description(oid, 'pg_policy') is null
        """
    ).fetchall()
    assert missing == []
