"""watchium_private.maintain_rooms(): stale members (with host transfer) and empty rooms."""

from __future__ import annotations

from typing import Any

import psycopg

from watchium_db.testing import as_user

Conn = psycopg.Connection[Any]

CREATE = (
    "select public.create_room(p_title => 'Party', p_anime_id => 'a1', p_anime_title => 'Anime',"
    " p_episode_number => 1, p_video_url => 'https://example.com/v', p_username => %s)"
)


def rpc(conn: Conn, user: str, sql: str, params: Any = ()) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def new_room(conn: Conn, host: str = "alice") -> str:
    room_id: str = rpc(conn, host, CREATE, (host.capitalize(),))["room"]["room_id"]
    return room_id


def join(conn: Conn, user: str, room_id: str) -> None:
    rpc(conn, user, "select public.join_room(%s, null, %s)", (room_id, user.capitalize()))


def go_stale(conn: Conn, user: str, ago: str = "31 seconds") -> None:
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = now() - %s::interval"
        " where user_id = %s",
        (ago, user),
    )


def maintain(conn: Conn) -> dict[str, Any]:
    row = conn.execute("select watchium_private.maintain_rooms()").fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def test_settings_have_documented_defaults(conn):
    rows = dict(
        conn.execute(
            "select key, watchium_private.setting_interval(key) from watchium_private.settings"
            " where key in ('member_stale_after', 'empty_room_grace')"
        ).fetchall()
    )
    assert {k: v.total_seconds() for k, v in rows.items()} == {
        "member_stale_after": 30,
        "empty_room_grace": 3600,
    }


def test_stale_host_is_removed_and_longest_present_member_takes_over(conn):
    room_id = new_room(conn)
    join(conn, "bob", room_id)
    join(conn, "carol", room_id)
    go_stale(conn, "alice")
    go_stale(conn, "carol", "29 seconds")  # not stale yet
    summary = maintain(conn)
    assert summary == {
        "stale_members_removed": 1,
        "hosts_transferred": 1,
        "empty_rooms_deleted": 0,
        "empty_anchors_deleted": 0,
        "rooms_skipped_busy": 0,
        "members_skipped_busy": 0,
        "expired_bans_deleted": 0,
        "expired_mutes_deleted": 0,
    }
    assert conn.execute(
        "select user_id, is_host from public.room_members order by joined_at"
    ).fetchall() == [("bob", True), ("carol", False)]
    assert conn.execute("select host_user_id, host_username from public.rooms").fetchone() == (
        "bob",
        "Bob",
    )
    assert conn.execute(
        "select user_id || ' ' || message from public.comments where is_system_message order by id desc limit 1"
    ).fetchone() == ("bob became the new host",)
    assert conn.execute(
        "select payload from watchium_private.room_events where event = 'member_left'"
    ).fetchall() == [({"user_id": "alice", "reason": "stale"},)]
    assert maintain(conn)["stale_members_removed"] == 0


def test_stale_timeout_is_configurable(conn):
    room_id = new_room(conn)
    join(conn, "bob", room_id)
    go_stale(conn, "bob", "10 seconds")
    assert maintain(conn)["stale_members_removed"] == 0
    conn.execute(
        "update watchium_private.settings set value = '\"5 seconds\"' where key = 'member_stale_after'"
    )
    assert maintain(conn)["stale_members_removed"] == 1


def test_empty_room_is_deleted_after_grace_with_its_comments(conn):
    room_id = new_room(conn)
    rpc(conn, "alice", "select public.post_comment('a1', 1, 'bye', p_room_id => %s)", (room_id,))
    go_stale(conn, "alice")
    summary = maintain(conn)
    assert summary["stale_members_removed"] == 1 and summary["empty_rooms_deleted"] == 0
    assert conn.execute("select host_user_id from public.rooms").fetchone() == (None,)
    # Within the grace period the room stays, and someone joining brings it back to life.
    conn.execute("update public.rooms set last_activity = now() - interval '59 minutes'")
    assert maintain(conn)["empty_rooms_deleted"] == 0
    conn.execute("update public.rooms set last_activity = now() - interval '61 minutes'")
    assert maintain(conn)["empty_rooms_deleted"] == 1
    assert conn.execute("select count(*) from public.rooms").fetchone() == (0,)
    # "Alice joined the room" and "bye" went with the room; the episode's anchor stays.
    assert conn.execute(
        "select count(*), count(*) filter (where is_anchor) from public.comments"
    ).fetchone() == (1, 1)
    assert conn.execute(
        "select payload from watchium_private.room_events where event = 'room_deleted'"
    ).fetchall() == [({"reason": "empty"},)]


def test_private_room_closed_by_maintenance_leaves_no_readable_chat(conn):
    created = rpc(
        conn,
        "alice",
        CREATE.replace("p_username => %s)", "p_username => %s, p_is_public => false)"),
        ("Alice",),
    )
    room_id = created["room"]["room_id"]
    rpc(
        conn,
        "alice",
        "select public.post_comment('a1', 1, 'secret chat', p_room_id => %s)",
        (room_id,),
    )
    go_stale(conn, "alice")
    maintain(conn)
    conn.execute("update public.rooms set last_activity = now() - interval '61 minutes'")
    assert maintain(conn)["empty_rooms_deleted"] == 1
    for user, role in ((None, "anon"), ("carol", "authenticated"), ("alice", "authenticated")):
        with as_user(conn, user, role=role) as c:
            assert c.execute(
                "select count(*) from public.comments where message = 'secret chat'"
            ).fetchone() == (0,)
            if user is None:
                continue  # anon reads the table only (get_comments is for signed-in users)
            listed = c.execute("select public.get_comments('a1', 1)").fetchone()
            assert listed is not None
            assert [i for i in listed[0]["items"] if i["message"] == "secret chat"] == []
    assert conn.execute("select count(*) from public.comments where not is_anchor").fetchone() == (
        0,
    )


def test_rejoined_empty_room_is_not_deleted(conn):
    room_id = new_room(conn)
    rpc(conn, "alice", "select public.leave_room(%s)", (room_id,))
    conn.execute("update public.rooms set last_activity = now() - interval '2 hours'")
    join(conn, "bob", room_id)
    conn.execute("update public.rooms set last_activity = now() - interval '2 hours'")
    assert maintain(conn)["empty_rooms_deleted"] == 0
    assert conn.execute("select host_user_id from public.rooms").fetchone() == ("bob",)


def test_busy_rooms_are_skipped_not_waited_for(watchium_db_url, conn):
    room_id = new_room(conn)
    join(conn, "bob", room_id)
    go_stale(conn, "bob")
    with psycopg.connect(watchium_db_url) as other:
        other.execute("select 1 from public.rooms where room_id = %s for update", (room_id,))
        conn.execute("set statement_timeout = '2s'")
        summary = maintain(conn)  # would time out if it waited for the lock
        assert summary["stale_members_removed"] == 0 and summary["rooms_skipped_busy"] == 1
        other.rollback()
    assert maintain(conn)["stale_members_removed"] == 1
