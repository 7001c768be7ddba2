"""Each unreleased revision strongly locks at most one table that clients use.

A revision runs in one transaction. When it holds a lock that blocks writers (SHARE or
stronger: an ALTER, a new foreign key, a trigger, a policy) on one busy table and then asks for
another, a client that holds the second and needs the first (post_comment writes comments, then
rooms; leave_room writes rooms, then comments) closes a cycle, and PostgreSQL's deadlock
detector aborts whichever waited first, often the client. No order of the two locks is safe
against both orders of client. One such table per revision is: the revision then waits only
for that table, and clients never wait for it while holding something it needs. A downgrade that
drops a table referencing a busy one (dropping the foreign key locks both) takes both up front,
in one LOCK TABLE, in the order clients take them (the busy table first: a delete there
cascades into the other).

The audit runs each revision's SQL (upgrade, and downgrade on the way back) in a transaction
on a database at the revision below, reads the transaction's own entries in pg_locks before
rolling back, then lets Alembic apply the revision for real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory

from watchium_db import migrate
from watchium_db.migration_sql import sql_path

ROOT = Path(__file__).resolve().parent.parent
# Modes that conflict with ROW EXCLUSIVE (what every INSERT/UPDATE/DELETE takes).
STRONG = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
HELD = """
select l.relation::int, l.mode
from pg_locks l
where l.pid = pg_backend_pid() and l.locktype = 'relation'
  and l.mode = any(%s) and l.relation = any(%s)
order by 1, 2
"""
EXISTING = """
select c.oid::int, n.nspname || '.' || c.relname from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm') and n.nspname in ('public', 'watchium_private')
"""


def unreleased_revisions() -> list[tuple[str, str, Path]]:
    """(revision, file) of the revisions not frozen by a release, oldest first."""
    released = json.loads((ROOT / "migrations" / "checksums.json").read_text())
    script = ScriptDirectory.from_config(migrate.alembic_config())
    out = []
    for rev in reversed(list(script.walk_revisions())):
        path = Path(rev.path)
        if f"versions/{path.name}" not in released:
            out.append((rev.revision, rev.down_revision, path))
    return out


def strong_locks(url: str, revision_file: Path, direction: str) -> list[tuple[str, str]]:
    """The strong locks the revision's SQL holds at its end on tables that existed before it,
    by name (read before: a table the revision drops has no name in its own transaction)."""
    sql = sql_path(str(revision_file), direction).read_text(encoding="utf-8")
    with psycopg.connect(url) as conn:
        names = dict(conn.execute(EXISTING).fetchall())
        conn.execute(sql.encode("utf-8"))
        held = conn.execute(HELD, (list(STRONG), list(names))).fetchall()
        conn.rollback()
    return [(names[oid], mode) for oid, mode in held]


def busy_tables(held: list[tuple[str, str]]) -> set[str]:
    return {name for name, _mode in held}


def locked_up_front(revision_file: Path, direction: str) -> set[str]:
    """The tables of a LOCK TABLE ... IN ACCESS EXCLUSIVE MODE that is the revision's first
    statement: a revision that must hold several (a downgrade dropping a table whose foreign
    key references a busy one) takes them at once, before anything else, in the order clients
    take them, so it never holds one while waiting for another that a client holds first."""
    sql = sql_path(str(revision_file), direction).read_text(encoding="utf-8")
    code = "\n".join(
        line for line in sql.splitlines() if line.strip() and not line.lstrip().startswith("--")
    )
    # A downgrade may first wait for older calls to end (it holds no lock while it waits).
    code = re.sub(r"^\s*select watchium_private\.await_older_transactions\(\);", "", code)
    first = re.match(r"\s*lock table ([a-z_., ]+?) in access exclusive mode;", code)
    return {name.strip() for name in first.group(1).split(",")} if first else set()


@pytest.mark.parametrize("direction", ["upgrade", "downgrade"])
def test_each_unreleased_revision_strongly_locks_one_existing_table_at_most(
    empty_db_url, direction
):
    revisions = unreleased_revisions()
    assert revisions, "no unreleased revision to audit"
    first_parent = revisions[0][1]
    migrate.upgrade(empty_db_url, first_parent)
    report = {}
    for revision, _parent, path in revisions:
        if direction == "upgrade":
            report[revision] = strong_locks(empty_db_url, path, "upgrade")
        migrate.upgrade(empty_db_url, revision)
    if direction == "downgrade":
        for revision, parent, path in reversed(revisions):
            report[revision] = strong_locks(empty_db_url, path, "downgrade")
            migrate.downgrade(empty_db_url, parent)
    paths = {revision: path for revision, _parent, path in revisions}
    offenders = {
        rev: held
        for rev, held in report.items()
        if len(busy_tables(held)) > 1
        and not busy_tables(held) <= locked_up_front(paths[rev], direction)
    }
    assert offenders == {}, (
        f"{direction}: revisions that strongly lock more than one table: {offenders}"
    )
    # The audit sees locks at all: some revision alters an existing table.
    assert any(report.values()), report
