"""Run a revision's SQL from the ``.sql`` files that sit beside it.

Each revision ``migrations/versions/NNNN_slug.py`` keeps its SQL in ``NNNN_slug.upgrade.sql`` and
``NNNN_slug.downgrade.sql`` so reviewers read plain SQL and squawk lints the same text that runs.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op


def sql_path(revision_file: str, direction: str) -> Path:
    path = Path(revision_file)
    return path.with_name(f"{path.stem}.{direction}.sql")


def run_sql_file(revision_file: str, direction: str) -> None:
    """Execute the whole ``.sql`` file for ``direction`` ('upgrade' or 'downgrade')."""
    sql = sql_path(revision_file, direction).read_text(encoding="utf-8")
    # Sent as is, on the migration's own connection and transaction: psycopg runs a
    # multi-statement script in one call, and without parameters '%' and ':' in function
    # bodies need no escaping. Offline mode prints the script instead.
    if op.get_context().as_sql:
        op.get_context().impl.static_output(sql.rstrip() + "\n")
        return
    driver_connection = op.get_bind().connection.driver_connection
    assert driver_connection is not None
    with driver_connection.cursor() as cursor:
        cursor.execute(sql.encode("utf-8"))
