"""Migration checks: one head, base -> head, round trip with data, offline SQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
from alembic.script import ScriptDirectory

from watchium_db import migrate

ROOT = Path(__file__).resolve().parent.parent


def test_single_head():
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert len(heads) == 1, heads


def test_revision_chain_is_linear_and_numbered():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in revisions] == [f"{i:04d}" for i in range(1, len(revisions) + 1)]
    for rev in revisions:
        module = Path(rev.path)
        for direction in ("upgrade", "downgrade"):
            assert module.with_name(f"{module.stem}.{direction}.sql").exists(), (rev, direction)


def test_upgrade_from_empty_database_and_version_table_is_private(empty_db_url):
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()
    with psycopg.connect(empty_db_url) as conn:
        where = conn.execute(
            "select table_schema from information_schema.tables where table_name = 'alembic_version'"
        ).fetchall()
    assert where == [("watchium_private",)]


SEED_ROWS = """
insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,
                          host_user_id, host_username, is_public)
  values ('roundtrip1', 'Round trip', 'a1', 'Anime', 1, 'https://example.com/v', 'u1', 'One', false);
insert into watchium_private.room_secrets (room_id, access_key) values ('roundtrip1', '012345');
insert into public.room_members (room_id, user_id, username, is_host)
  values ('roundtrip1', 'u1', 'One', true);
insert into public.comments (anime_id, room_id, episode_number, user_id, username, message)
  values ('a1', 'roundtrip1', 1, 'u1', 'One', 'hello');
insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,
                                is_synced, sync_event_type)
  values ('roundtrip1', 'u1', 1, 1, 0, true, 'join');
insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description)
  values ('roundtrip', 1, 1, 'round trip test');
select public.check_rate_limit('u1', 'roundtrip');
select watchium_private.emit_room_event('roundtrip1', 'test', '{}');
insert into watchium_private.room_events_expired (room_id, xact_id, event_id)
  values ('roundtrip1', '1', 1);
insert into watchium_private.realtime_metrics (room_id, user_id, active_connections, total_events,
                                               avg_latency_ms, error_rate)
  values ('roundtrip1', 'u1', 1, 1, 1, 0);
insert into public.room_queue (room_id, position, anime_id, anime_title, episode_number, video_url,
                               duration, added_by, added_by_username)
  values ('roundtrip1', 1, 'a1', 'Anime', 2, 'https://example.com/v2', 1440, 'u1', 'One');
insert into public.room_permissions (room_id, permission, min_role)
  values ('roundtrip1', 'chat', 'viewer');
insert into watchium_private.room_bans (room_id, user_id, reason) values ('roundtrip1', 'u9', 'spam');
insert into watchium_private.room_mutes (room_id, user_id, shadow) values ('roundtrip1', 'u1', true);
insert into watchium_private.member_playback (room_id, user_id) values ('roundtrip1', 'u1');
update public.rooms set join_policy = 'approval' where room_id = 'roundtrip1';
insert into watchium_private.room_join_requests (room_id, user_id, username, message)
  values ('roundtrip1', 'u8', 'Eight', 'let me in');
"""


def test_downgrade_to_base_and_upgrade_again(watchium_db_url):
    with psycopg.connect(watchium_db_url, autocommit=True) as conn:
        conn.execute(SEED_ROWS)
        tables = conn.execute(
            "select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname in ('public', 'watchium_private') and c.relkind in ('r', 'p')"
            " and not c.relispartition and c.relname <> 'alembic_version'"
        ).fetchall()
        for (table,) in tables:
            count = conn.execute(f"select count(*) from {table}").fetchone()
            assert count is not None and count[0] > 0, f"{table} has no rows to carry through"
    migrate.downgrade(watchium_db_url, "base")
    with psycopg.connect(watchium_db_url) as conn:
        left = conn.execute(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname in ('public', 'watchium_private') and c.relname not like 'alembic_version%'"
            " and c.relkind in ('r', 'p', 'v', 'm', 'S', 'i')"
        ).fetchall()
        funcs = conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('public', 'watchium_private', 'watchium_rpc')"
        ).fetchall()
        rpc_schema = conn.execute(
            "select 1 from pg_namespace where nspname = 'watchium_rpc'"
        ).fetchall()
    assert left == [] and funcs == [] and rpc_schema == []
    migrate.upgrade(watchium_db_url)
    assert migrate.current_revision(watchium_db_url) == migrate.head_revision()


def test_offline_sql_renders_every_revision():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(ROOT / "alembic.ini"),
            "upgrade",
            "head",
            "--sql",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert "SET lock_timeout" in out and "SET statement_timeout" in out
    assert "create table public.rooms" in out
    assert "CREATE TABLE watchium_private.alembic_version" in out
