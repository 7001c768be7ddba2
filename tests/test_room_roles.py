"""Room roles (host, co_host, member, viewer) and the per-room permission map (revisions 0009, 0010)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db import migrate
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


def roles(conn: Conn, room_id: str) -> dict[str, str]:
    rows = conn.execute(
        "select user_id, role from public.room_members where room_id = %s", (room_id,)
    ).fetchall()
    return dict(rows)


def may(conn: Conn, room_id: str, user: str | None, permission: str) -> bool:
    row = conn.execute(
        "select watchium_private.has_room_permission(%s, %s, %s)", (room_id, user, permission)
    ).fetchone()
    assert row is not None
    return bool(row[0])


def set_role(conn: Conn, room_id: str, user: str, role: str) -> None:
    conn.execute(
        "update public.room_members set role = %s where room_id = %s and user_id = %s",
        (role, room_id, user),
    )


def test_creator_is_host_and_joiners_are_members(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    assert roles(conn, room) == {"alice": "host", "bob": "member"}
    membership = rpc(conn, "carol", "select public.join_room(%s, null, 'Carol')", (room,))[
        "membership"
    ]
    assert membership["role"] == "member"


def test_role_follows_the_host_flag_on_transfer_and_succession(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    join(conn, "carol", room)
    rpc(conn, "alice", "select public.transfer_host(%s, 'bob')", (room,))
    assert roles(conn, room) == {"alice": "member", "bob": "host", "carol": "member"}
    rpc(conn, "bob", "select public.leave_room(%s)", (room,))
    assert roles(conn, room) == {"alice": "host", "carol": "member"}


def test_an_emptied_room_joined_again_gets_a_host_role(conn):
    room = new_room(conn)
    rpc(conn, "alice", "select public.leave_room(%s)", (room,))
    join(conn, "bob", room)
    assert roles(conn, room) == {"bob": "host"}


def test_role_host_without_the_flag_is_refused_even_to_the_owner(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    with pytest.raises(errors.CheckViolation):
        set_role(conn, room, "bob", "host")
    conn.rollback()
    assert roles(conn, room) == {"alice": "host", "bob": "member"}


def test_the_host_cannot_be_given_a_lower_role_directly(conn):
    room = new_room(conn)
    set_role(conn, room, "alice", "viewer")
    assert roles(conn, room) == {"alice": "host"}


def test_unknown_roles_are_refused(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    with pytest.raises(errors.CheckViolation):
        set_role(conn, room, "bob", "admin")


def test_default_permissions_reproduce_host_only_and_member_rights(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    # As in 0.1.0: the host controls, moderates and changes the room; members chat and comment.
    for permission in (
        "control_playback",
        "kick",
        "ban",
        "mute",
        "update_room",
        "manage_roles",
        "manage_permissions",
        "moderate_comments",
        "edit_queue",
        "approve_joins",
    ):
        assert may(conn, room, "alice", permission), permission
        assert not may(conn, room, "bob", permission), permission
    for permission in ("chat", "comment", "add_to_queue"):
        assert may(conn, room, "alice", permission) and may(conn, room, "bob", permission)
    # Non-members have no permission at all.
    assert not may(conn, room, "mallory", "chat")
    assert not may(conn, room, None, "chat")


def test_co_hosts_and_viewers_by_default(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    join(conn, "carol", room)
    set_role(conn, room, "bob", "co_host")
    set_role(conn, room, "carol", "viewer")
    assert may(conn, room, "bob", "control_playback") and may(conn, room, "bob", "kick")
    assert not may(conn, room, "bob", "manage_roles")
    assert not may(conn, room, "bob", "manage_permissions")
    assert not may(conn, room, "bob", "update_room")
    assert not may(conn, room, "carol", "chat") and not may(conn, room, "carol", "comment")


def test_a_room_override_changes_only_that_room(conn):
    room = new_room(conn)
    other = new_room(conn, "dave")
    join(conn, "bob", room)
    join(conn, "erin", other)
    conn.execute(
        "insert into public.room_permissions (room_id, permission, min_role) values (%s, 'chat', 'host'),"
        " (%s, 'control_playback', 'member')",
        (room, room),
    )
    assert not may(conn, room, "bob", "chat") and may(conn, room, "alice", "chat")
    assert may(conn, room, "bob", "control_playback")
    assert may(conn, other, "erin", "chat") and not may(conn, other, "erin", "control_playback")


def test_require_room_permission_raises_42501_naming_the_role(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    with pytest.raises(
        errors.InsufficientPrivilege, match=r"control_playback .* needs the co_host role"
    ):
        conn.execute(
            "select watchium_private.require_room_permission(%s, 'bob', 'control_playback')",
            (room,),
        )
    conn.rollback()
    conn.execute(
        "select watchium_private.require_room_permission(%s, 'alice', 'control_playback')", (room,)
    )


def test_unknown_permission_is_22023(conn):
    room = new_room(conn)
    with pytest.raises(errors.InvalidParameterValue, match="p_permission"):
        may(conn, room, "alice", "be_god")


def test_the_map_is_validated_by_constraints(conn):
    room = new_room(conn)
    with pytest.raises(errors.CheckViolation):
        conn.execute(
            "insert into public.room_permissions (room_id, permission, min_role) values (%s, 'chat', 'admin')",
            (room,),
        )
    conn.rollback()
    with pytest.raises(errors.ForeignKeyViolation):
        conn.execute(
            "insert into public.room_permissions (room_id, permission, min_role) values (%s, 'be_god', 'viewer')",
            (room,),
        )


def test_the_map_goes_with_its_room(conn):
    room = new_room(conn)
    conn.execute(
        "insert into public.room_permissions (room_id, permission, min_role) values (%s, 'chat', 'host')",
        (room,),
    )
    rpc(conn, "alice", "select public.delete_room(%s)", (room,))
    assert conn.execute("select count(*) from public.room_permissions").fetchone() == (0,)


def test_clients_cannot_write_roles_or_the_map(conn):
    room = new_room(conn)
    join(conn, "bob", room)
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, "bob") as c:
        c.execute("update public.room_members set role = 'co_host' where user_id = 'bob'")
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, "bob") as c:
        c.execute(
            "insert into public.room_permissions (room_id, permission, min_role) values (%s, 'kick', 'member')",
            (room,),
        )
    assert roles(conn, room) == {"alice": "host", "bob": "member"}


def test_upgrade_gives_existing_hosts_the_host_role(empty_db_url):
    migrate.upgrade(empty_db_url, "0008")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        c.execute(
            "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url)"
            " values ('upgraded01', 'Old', 'a1', 'Anime', 1, 'https://example.com/v')"
        )
        c.execute(
            "insert into public.room_members (room_id, user_id, username, is_host) values"
            " ('upgraded01', 'h', 'H', true), ('upgraded01', 'm', 'M', false)"
        )
    migrate.upgrade(empty_db_url)
    with psycopg.connect(empty_db_url) as c:
        rows = c.execute(
            "select user_id, role from public.room_members order by user_id"
        ).fetchall()
    assert rows == [("h", "host"), ("m", "member")]
