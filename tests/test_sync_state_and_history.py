"""The Live button (get_room_sync_state) and the partitioned sync history."""

from __future__ import annotations

import psycopg
import pytest

from tests.sync_factories import ROOM_ID, as_service, heartbeat, make_room, one
from watchium_db.testing import as_user

PARTITIONS = (
    "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
    " where i.inhparent = 'public.sync_states'::regclass order by 1"
)


def test_live_state_extrapolates_and_reports_the_caller_and_the_room(conn):
    make_room(conn, playing=True, position=200, speed=1.5, members=["alice", "bob", "carol"])
    # The published flag is a snapshot of the last heartbeat; the stats ignore it.
    conn.execute("update public.room_members set is_synced = false where user_id = 'alice'")
    # carol reported after the reference, but 3 s off: needs to resync.
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = now(), time_difference = 3"
        " where user_id = 'carol'"
    )
    with conn.transaction():
        conn.execute("update public.rooms set playback_updated_at = now() - interval '4 seconds'")
        conn.execute(
            "update watchium_private.member_presence set reported_time = 203, is_playing = true,"
            " time_difference = 0, last_heartbeat = now() - interval '2 seconds'"
            " where user_id = 'alice'"
        )
        with as_user(conn, "alice") as c:
            state = one(c, "select public.get_room_sync_state(%s)", (ROOM_ID,))
    assert state["expected_time"] == 206 and state["is_playing"] is True
    assert state["playback_speed"] == 1.5 and state["episode_number"] == 3
    assert state["host_user_id"] == "host"
    # alice reported 203 two seconds ago while playing: now at 206.
    assert state["me"]["estimated_time"] == 206 and state["me"]["sync_level"] == "perfect"
    assert state["me"]["needs_resync"] is False
    # Derived: host (it set the reference) and alice (reported since) are synced; bob's last
    # heartbeat (10 s ago) predates the reference (4 s ago), carol's last drift was 3 s.
    assert state["stats"] == {
        "members": 4,
        "synced_members": 2,
        "needs_resync_members": 2,
        "sync_percentage": 50.0,
    }


def test_live_state_is_for_members(conn):
    make_room(conn)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "mallory") as c:
        c.execute("select public.get_room_sync_state(%s)", (ROOM_ID,))
    assert exc.value.sqlstate == "42501"
    with as_service(conn) as c:
        assert one(c, "select public.get_room_sync_state(%s)", (ROOM_ID,))["me"] is None


def test_host_after_its_own_control_is_at_the_new_position(conn):
    make_room(conn)
    with as_user(conn, "host") as c:
        c.execute("select public.seek_to_time(%s, 300)", (ROOM_ID,))
        state = one(c, "select public.get_room_sync_state(%s)", (ROOM_ID,))
    assert state["me"]["time_difference"] == 0 and state["me"]["is_synced"] is True


def test_migration_creates_no_time_dependent_partition(conn):
    assert conn.execute(PARTITIONS).fetchall() == [("sync_states_default",)]


def test_maintenance_creates_partitions_ahead_locked_down(conn):
    result = one(conn, "select watchium_private.maintain_sync_history()")
    expected = conn.execute(
        "select 'sync_states_p' || to_char(h, 'YYYYMMDDHH24') from generate_series("
        " date_trunc('hour', now() at time zone 'UTC'),"
        " date_trunc('hour', now() at time zone 'UTC') + interval '1 day', interval '1 hour') h"
    ).fetchall()
    names = [n for (n,) in expected]
    assert len(names) == 25  # this hour and a day ahead (sync_history_premake)
    assert result["created"] == names and result["skipped"] == []
    assert [n for (n,) in conn.execute(PARTITIONS).fetchall()] == sorted(
        [*names, "sync_states_default"]
    )
    for name in names:
        assert one(
            conn,
            "select relrowsecurity from pg_class where oid = %s::regclass",
            (f"public.{name}",),
        )
        for role in ("anon", "authenticated", "service_role"):
            assert not one(
                conn,
                "select has_table_privilege(%s, %s, 'select,insert,update,delete')",
                (role, f"public.{name}"),
            ), (role, name)
    # A second run has nothing to do.
    again = one(conn, "select watchium_private.maintain_sync_history()")
    assert again["created"] == [] and again["detached"] == [] and again["dropped"] == []
    # New history lands in the hourly partition, not in the default one.
    make_room(conn)
    heartbeat(conn, "alice", 0, is_playing=False)
    assert one(conn, "select count(*) from public.sync_states_default") == 0
    assert one(conn, f"select count(*) from public.{names[0]}") == 1


def test_history_without_a_key_can_still_be_deleted_if_published(conn):
    """sync_states has no primary key and is not in supabase_realtime (Realtime cannot deliver
    a relation without one). Its partitions keep replica identity FULL so that a delete
    (maintenance on the default partition, or erasing a user's history) still works if an app
    adds the table to a publication of its own."""
    published = (
        "select count(*) from pg_publication_tables where pubname = 'supabase_realtime'"
        " and tablename like 'sync_states%'"
    )
    assert one(conn, published) == 0
    one(conn, "select watchium_private.maintain_sync_history()")
    identities = conn.execute(
        "select distinct c.relreplident from pg_inherits i join pg_class c on c.oid = i.inhrelid"
        " where i.inhparent = 'public.sync_states'::regclass"
    ).fetchall()
    assert identities == [("f",)]
    conn.execute(
        "create publication app_history for table public.sync_states"
        " with (publish_via_partition_root = true)"
    )
    insert = (
        "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
        " is_synced, sync_event_type) values ('r', 'u', 1, 1, 0, true, 'heartbeat')"
    )
    conn.execute(insert)
    conn.execute("delete from public.sync_states where user_id = 'u'")
    assert one(conn, "select count(*) from public.sync_states") == 0
    # Without FULL (no key to log), PostgreSQL refuses the delete.
    partition = one(
        conn,
        "select 'public.sync_states_p' || to_char(now() at time zone 'UTC', 'YYYYMMDDHH24')",
    )
    conn.execute(f"alter table {partition} replica identity default")
    conn.execute(insert)
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("delete from public.sync_states where user_id = 'u'")
    assert exc.value.sqlstate == "55000"


def test_maintenance_moves_default_rows_and_drops_expired_partitions(conn):
    insert = (
        "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
        " is_synced, sync_event_type, created_at) values ('r', 'u', 1, 1, 0, true, 'heartbeat', now() - %s::interval)"
    )
    conn.execute(insert, ("2 hours",))  # within retention: moves to its own partition
    conn.execute(insert, ("3 hours",))  # likewise, another hour
    conn.execute(insert, ("7 hours",))  # expired: deleted from the default partition
    first = one(conn, "select watchium_private.maintain_sync_history()")
    assert first["moved_from_default"] == 2 and first["expired_from_default"] == 1
    assert first["left_in_default"] == 0
    old_name = one(
        conn,
        "select 'sync_states_p' || to_char(date_trunc('hour', (now() - interval '2 hours') at time zone 'UTC'), 'YYYYMMDDHH24')",
    )
    assert old_name in first["created"]
    # Partitions keep the parent's lz4 compression of the snapshot arrays (this server has lz4).
    compression = conn.execute(
        "select attname, attcompression from pg_attribute"
        " where attrelid = %s::regclass and attname in ('member_ids', 'member_times')"
        " order by attname",
        (f"public.{old_name}",),
    ).fetchall()
    assert compression == [("member_ids", "l"), ("member_times", "l")]
    assert one(conn, f"select count(*) from public.{old_name}") == 1
    assert one(conn, "select count(*) from public.sync_states") == 2

    # Shorter retention: that hour has expired; its partition is dropped, not deleted from.
    conn.execute(
        "update watchium_private.settings set value = '\"30 minutes\"' where key = 'sync_history_retention'"
    )
    # A run detaches expired partitions (the parent's lock held only for that); the next run
    # drops them, and takes no lock RPCs need in that run.
    second = one(conn, "select watchium_private.maintain_sync_history()")
    assert old_name in second["detached"] and len(second["detached"]) >= 2
    assert second["dropped"] == []
    third = one(conn, "select watchium_private.maintain_sync_history()")
    assert sorted(third["dropped"]) == sorted(second["detached"]) and third["detached"] == []
    for name in third["dropped"]:
        assert one(conn, "select to_regclass(%s)", (f"public.{name}",)) is None
    assert (
        one(
            conn,
            "select count(*) from public.sync_states where created_at < now() - interval '30 minutes'",
        )
        == 0
    )
    # The current hour and the day ahead stay (and the default partition).
    assert len(conn.execute(PARTITIONS).fetchall()) == 26


def test_history_event_types_are_checked(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
            " is_synced, sync_event_type) values ('r', 'u', 1, 1, 0, true, 'rewind')"
        )


def test_members_read_their_rooms_history_only(conn):
    make_room(conn, members=["alice"])
    make_room(conn, "otherroom1", host="olga", members=[])
    with as_service(conn) as c:
        c.execute("select public.bulk_sync_update(%s, 0, 'seek')", (ROOM_ID,))
        c.execute("select public.bulk_sync_update('otherroom1', 0, 'seek')")
    with as_user(conn, "alice") as c:
        rooms = c.execute("select distinct room_id from public.sync_states").fetchall()
    assert rooms == [(ROOM_ID,)]
