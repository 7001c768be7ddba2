"""Clients keep working while a database moves through the unreleased revisions one by one.

An upgrade runs revision after revision, each in its own transaction: a client calls the RPCs
in between. So at every revision from the release on, every RPC of the release is still there
(a revision that replaces one drops and creates it in the same transaction), and a revision
never drops what it does not create again.
"""

from __future__ import annotations

import psycopg

from tests.test_migration_lock_audit import unreleased_revisions
from watchium_db import migrate

PUBLIC_FUNCTIONS = """
select coalesce(array_agg(distinct p.proname order by p.proname), '{}')
from pg_proc as p
where p.pronamespace = 'public'::regnamespace
  and not exists (select from pg_depend as d where d.objid = p.oid and d.deptype = 'e')
"""


def public_functions(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(PUBLIC_FUNCTIONS).fetchone()
    assert row is not None
    return set(row[0])


def test_every_released_rpc_exists_at_every_later_revision(empty_db_url):
    revisions = unreleased_revisions()
    migrate.upgrade(empty_db_url, revisions[0][1])
    released = public_functions(empty_db_url)
    assert {"join_room", "record_heartbeat", "post_comment"} <= released
    missing = {}
    for revision, _parent, _path in revisions:
        migrate.upgrade(empty_db_url, revision)
        gone = released - public_functions(empty_db_url)
        if gone:
            missing[revision] = sorted(gone)
    assert missing == {}
