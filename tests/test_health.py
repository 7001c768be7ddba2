"""realtime_health() and `watchium-db doctor`: pass on a migrated database, fail naming the
problem when a table leaves the publication (or its replica identity changes); service_role only."""

from __future__ import annotations

import json

import psycopg
import pytest

from watchium_db import cli, health
from watchium_db.testing import as_user


@pytest.fixture
def db_env(watchium_db_url, monkeypatch):
    monkeypatch.setenv("WATCHIUM_DATABASE_URL", watchium_db_url)
    return watchium_db_url


def test_doctor_passes_on_a_migrated_database(db_env, capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("realtime health: OK")
    assert "public.rooms" in out and "delivery notify" in out
    assert cli.main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["problems"] == []
    assert report["realtime"] == {
        "schema_present": False,
        "send_available": False,
        "delivery_setting": "auto",
        "delivery": "notify",
        "notify_channel": "watchium:room:<room_id>",
        "topic": "room:<room_id>",
        "members_notify_channel": "watchium:room:<room_id>:members",
        "members_topic": "room:<room_id>:members",
    }
    assert report["authorization"] == {"required": False, "policies": {}}
    assert set(report["publication"]["tables"]) == {
        "public.rooms",
        "public.room_members",
        "public.comments",
    }


def test_doctor_fails_naming_a_table_missing_from_the_publication(conn, db_env, capsys):
    conn.execute("alter publication supabase_realtime drop table public.room_members")
    assert cli.main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "PROBLEMS FOUND" in captured.out
    assert (
        "problem: table public.room_members is not in publication supabase_realtime" in captured.out
    )
    assert captured.err == (
        "watchium-db: doctor: table public.room_members is not in publication supabase_realtime\n"
    )
    assert cli.main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["publication"]["tables"]["public.room_members"]["published"] is False


def test_replica_identity_drift_and_private_tables_are_problems(conn):
    conn.execute("alter table public.comments replica identity full")
    conn.execute("alter publication supabase_realtime add table watchium_private.room_secrets")
    report = conn.execute("select public.realtime_health()").fetchone()[0]
    assert not report["ok"]
    assert report["problems"] == [
        "table public.comments has replica identity full, expected index comments_replica_key_idx"
        " (run alter table public.comments replica identity using index comments_replica_key_idx)",
        "publication supabase_realtime publishes tables of watchium_private (secrets, presence)",
    ]


def test_published_history_is_a_problem(conn):
    """sync_states has no primary key: Realtime would send an error record per insert."""
    conn.execute("alter publication supabase_realtime add table public.sync_states")
    report = conn.execute("select public.realtime_health()").fetchone()[0]
    assert not report["ok"]
    assert report["problems"] == [
        "public.sync_states is in publication supabase_realtime: it has no primary key, so"
        " Realtime cannot deliver it (run alter publication supabase_realtime drop table"
        " public.sync_states)"
    ]
    conn.execute("alter publication supabase_realtime drop table public.sync_states")
    conn.execute("alter publication supabase_realtime add table public.sync_states_default")
    report = conn.execute("select public.realtime_health()").fetchone()[0]
    assert not report["ok"] and report["problems"][0].startswith("public.sync_states is in")


def test_missing_publication_is_a_problem(conn, watchium_db_url):
    conn.execute("drop publication supabase_realtime")
    report = health.check(watchium_db_url)
    assert not report.ok and report.problems == ["publication supabase_realtime does not exist"]


def test_slot_lag_stale_members_and_empty_rooms_are_reported(conn):
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url)"
        " values ('emptyroom1', 'T', 'a', 'A', 1, 'https://e.x/v'), ('fullroom01', 'T', 'a', 'A', 1, 'https://e.x/v')"
    )
    conn.execute(
        "insert into public.room_members (room_id, user_id, username) values"
        " ('fullroom01', 'u1', 'U1'), ('fullroom01', 'u2', 'U2')"
    )
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = now() - interval '1 hour'"
        " where user_id = 'u1'"
    )
    conn.execute(
        "select pg_create_logical_replication_slot('watchium_health_slot', 'pgoutput', true)"
    )
    conn.execute("select watchium_private.emit_room_event('fullroom01', 'room_updated', '{}')")
    report = conn.execute("select public.realtime_health()").fetchone()[0]
    assert report["ok"]
    assert report["rooms"] == {"total": 2, "empty": 1}
    assert report["members"]["total"] == 2 and report["members"]["stale"] == 1
    # Two member_joined events from the join trigger, host_changed (the room had no host, so
    # its first member became host), and the room_updated above.
    assert report["events"]["logged"] == 4 and report["events"]["last_minute"] == 4
    assert report["events"]["notify_queue_usage"] == 0
    (slot,) = report["replication_slots"]
    assert slot["slot_name"] == "watchium_health_slot" and slot["lag_bytes"] > 0
    conn.execute(
        "update watchium_private.settings set value = '0' where key = 'replication_slot_max_lag_bytes'"
    )
    report = conn.execute("select public.realtime_health()").fetchone()[0]
    assert not report["ok"]
    assert report["problems"][0].startswith("replication slot watchium_health_slot retains")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_clients_cannot_read_the_report(conn, role):
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        as_user(conn, None if role == "anon" else "alice", role=role) as c,
    ):
        c.execute("select public.realtime_health()")


def test_service_role_reads_the_report(conn):
    with as_user(conn, None, role="service_role") as c:
        row = c.execute("select public.realtime_health() ->> 'ok'").fetchone()
    assert row == ("true",)


def test_doctor_reports_an_unreachable_database(monkeypatch, capsys):
    monkeypatch.setenv("WATCHIUM_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert cli.main(["doctor"]) == 1
    assert "database unreachable" in capsys.readouterr().err
