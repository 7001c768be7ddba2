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
    make_room(conn, playing=True, position=200, speed=1.5, members=["alice", "bob"])
    conn.execute("update public.room_members set is_synced = false where user_id = 'bob'")
    with conn.transaction():
        conn.execute("update public.rooms set playback_updated_at = now() - interval '4 seconds'")
        conn.execute(
            "update watchium_private.member_presence set reported_time = 203, is_playing = true,"
            " last_heartbeat = now() - interval '2 seconds' where user_id = 'alice'"
        )
        with as_user(conn, "alice") as c:
            state = one(c, "select public.get_room_sync_state(%s)", (ROOM_ID,))
    assert state["expected_time"] == 206 and state["is_playing"] is True
    assert state["playback_speed"] == 1.5 and state["episode_number"] == 3
    assert state["host_user_id"] == "host"
    # alice reported 203 two seconds ago while playing: now at 206.
    assert state["me"]["estimated_time"] == 206 and state["me"]["sync_level"] == "perfect"
    assert state["stats"] == {"members": 3, "synced_members": 2, "sync_percentage": 66.7}


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
        " date_trunc('hour', now() at time zone 'UTC') + interval '3 hours', interval '1 hour') h"
    ).fetchall()
    names = [n for (n,) in expected]
    assert result["created"] == names
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
    assert again["created"] == [] and again["dropped"] == []
    # New history lands in the hourly partition, not in the default one.
    make_room(conn)
    heartbeat(conn, "alice", 0, is_playing=False)
    assert one(conn, "select count(*) from public.sync_states_default") == 0
    assert one(conn, f"select count(*) from public.{names[0]}") == 1


def test_maintenance_moves_default_rows_and_drops_expired_partitions(conn):
    insert = (
        "insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,"
        " is_synced, sync_event_type, created_at) values ('r', 'u', 1, 1, 0, true, 'heartbeat', now() - %s::interval)"
    )
    conn.execute(insert, ("2 hours",))  # within retention: moves to its own partition
    conn.execute(insert, ("7 hours",))  # expired: deleted from the default partition
    first = one(conn, "select watchium_private.maintain_sync_history()")
    assert first["moved_from_default"] == 1 and first["expired_from_default"] == 1
    assert first["left_in_default"] == 0
    old_name = one(
        conn,
        "select 'sync_states_p' || to_char(date_trunc('hour', (now() - interval '2 hours') at time zone 'UTC'), 'YYYYMMDDHH24')",
    )
    assert old_name in first["created"]
    assert one(conn, f"select count(*) from public.{old_name}") == 1
    assert one(conn, "select count(*) from public.sync_states") == 1

    # Shorter retention: that hour has expired; its partition is dropped, not deleted from.
    conn.execute(
        "update watchium_private.settings set value = '\"30 minutes\"' where key = 'sync_history_retention'"
    )
    second = one(conn, "select watchium_private.maintain_sync_history()")
    assert old_name in second["dropped"]
    assert one(conn, "select to_regclass(%s)", (f"public.{old_name}",)) is None
    assert (
        one(
            conn,
            "select count(*) from public.sync_states where created_at < now() - interval '30 minutes'",
        )
        == 0
    )
    # The current hour and the ones ahead stay.
    assert len(conn.execute(PARTITIONS).fetchall()) == 5


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
