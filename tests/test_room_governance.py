"""Roles and permissions through the RPCs (revision 0015): set_member_role, set_room_permission,
get_room_permissions, kick by permission, co-hosts first in host succession. Each attack a client
could try has a test."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db.testing import as_user

Conn = psycopg.Connection[Any]

CREATE = (
    "select public.create_room(p_title => 'Party', p_anime_id => 'a1', p_anime_title => 'Anime',"
    " p_episode_number => 1, p_video_url => 'https://example.com/v', p_username => %s,"
    " p_is_public => %s)"
)


def rpc(conn: Conn, user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def new_room(conn: Conn, host: str = "alice", *, public: bool = True) -> str:
    room_id: str = rpc(conn, host, CREATE, host.capitalize(), public)["room"]["room_id"]
    return room_id


def join(conn: Conn, user: str, room_id: str) -> None:
    rpc(conn, user, "select public.join_room(%s, null, %s)", room_id, user.capitalize())


def roles(conn: Conn, room_id: str) -> dict[str, str]:
    rows = conn.execute(
        "select user_id, role from public.room_members where room_id = %s", (room_id,)
    ).fetchall()
    return dict(rows)


def set_role(conn: Conn, actor: str, room_id: str, user: str, role: str | None) -> Any:
    return rpc(conn, actor, "select public.set_member_role(%s, %s, %s)", room_id, user, role)


def set_permission(conn: Conn, actor: str, room_id: str, permission: str, role: str | None) -> Any:
    return rpc(
        conn, actor, "select public.set_room_permission(%s, %s, %s)", room_id, permission, role
    )


def events(conn: Conn, room_id: str, name: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select payload from watchium_private.room_events where room_id = %s and event = %s"
        " order by event_id",
        (room_id, name),
    ).fetchall()
    return [p for (p,) in rows]


@pytest.fixture
def party(conn: Conn) -> str:
    """alice hosts; bob, carol and dave are members (joined in that order)."""
    room = new_room(conn)
    for user in ("bob", "carol", "dave"):
        join(conn, user, room)
    return room


def test_the_host_appoints_a_co_host_and_an_event_says_so(conn, party):
    result = set_role(conn, "alice", party, "bob", "co_host")
    assert result == {"room_id": party, "user_id": "bob", "role": "co_host", "previous_role": "member"}
    assert roles(conn, party)["bob"] == "co_host"
    assert events(conn, party, "member_role_changed") == [
        {"user_id": "bob", "role": "co_host", "previous_role": "member", "changed_by": "alice"}
    ]
    # The same role again changes nothing and says nothing.
    set_role(conn, "alice", party, "bob", "co_host")
    assert len(events(conn, party, "member_role_changed")) == 1


def test_nobody_is_made_host_by_a_role(conn, party):
    with pytest.raises(errors.InvalidParameterValue, match="p_role"):
        set_role(conn, "alice", party, "bob", "host")


def test_a_co_host_cannot_promote_itself_or_others(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    # manage_roles is the host's by default.
    with pytest.raises(errors.InsufficientPrivilege, match="manage_roles"):
        set_role(conn, "bob", party, "carol", "co_host")
    # Even with manage_roles, only roles below its own, to members below it.
    set_permission(conn, "alice", party, "manage_roles", "co_host")
    with pytest.raises(errors.InsufficientPrivilege, match="lower than yours"):
        set_role(conn, "bob", party, "carol", "co_host")
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        set_role(conn, "bob", party, "bob", "member")
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        set_role(conn, "bob", party, "alice", "viewer")
    set_role(conn, "bob", party, "carol", "viewer")
    assert roles(conn, party) == {"alice": "host", "bob": "co_host", "carol": "viewer", "dave": "member"}


def test_a_co_host_cannot_demote_another_co_host(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    set_role(conn, "alice", party, "carol", "co_host")
    set_permission(conn, "alice", party, "manage_roles", "co_host")
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        set_role(conn, "bob", party, "carol", "viewer")


def test_a_co_host_cannot_take_host(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    with pytest.raises(errors.InsufficientPrivilege):
        rpc(conn, "bob", "select public.transfer_host(%s, 'bob')", party)
    assert roles(conn, party)["alice"] == "host"


def test_a_member_cannot_edit_the_permission_map(conn, party):
    with pytest.raises(errors.InsufficientPrivilege, match="manage_permissions"):
        set_permission(conn, "bob", party, "control_playback", "member")
    assert conn.execute("select count(*) from public.room_permissions").fetchone() == (0,)


def test_a_co_host_edits_the_map_only_within_its_role(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    set_permission(conn, "alice", party, "manage_permissions", "co_host")
    # Allowed: a permission it holds, to a role it holds.
    set_permission(conn, "bob", party, "chat", "co_host")
    # Not: a host-only permission (it would hand itself manage_roles or update_room).
    with pytest.raises(errors.InsufficientPrivilege, match="you may change only"):
        set_permission(conn, "bob", party, "manage_roles", "co_host")
    with pytest.raises(errors.InsufficientPrivilege, match="you may change only"):
        set_permission(conn, "bob", party, "kick", "host")
    # The host always keeps every permission.
    host_view = rpc(conn, "alice", "select public.get_room_permissions(%s)", party)
    assert all(p["allowed"] for p in host_view["permissions"])


def test_set_room_permission_stores_only_overrides_and_reports_changes(conn, party):
    result = set_permission(conn, "alice", party, "control_playback", "member")
    assert result == {"room_id": party, "permission": "control_playback", "min_role": "member",
                      "previous_min_role": "co_host", "is_default": False}  # fmt: skip
    assert conn.execute("select permission, min_role, updated_by from public.room_permissions").fetchall() == [
        ("control_playback", "member", "alice")
    ]
    back = set_permission(conn, "alice", party, "control_playback", None)
    assert back["min_role"] == "co_host" and back["is_default"]
    assert conn.execute("select count(*) from public.room_permissions").fetchone() == (0,)
    assert [e["min_role"] for e in events(conn, party, "room_permission_changed")] == ["member", "co_host"]


def test_unknown_permission_and_role_are_22023(conn, party):
    with pytest.raises(errors.InvalidParameterValue, match="p_permission"):
        set_permission(conn, "alice", party, "be_god", "viewer")
    with pytest.raises(errors.InvalidParameterValue, match="p_min_role"):
        set_permission(conn, "alice", party, "chat", "admin")


def test_get_room_permissions_tells_each_member_what_it_may_do(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    mine = rpc(conn, "bob", "select public.get_room_permissions(%s)", party)
    assert mine["role"] == "co_host"
    allowed = {p["permission"]: p["allowed"] for p in mine["permissions"]}
    assert allowed["control_playback"] and allowed["kick"] and not allowed["manage_roles"]
    carol = rpc(conn, "carol", "select public.get_room_permissions(%s)", party)
    assert carol["role"] == "member"
    assert {p["permission"] for p in carol["permissions"] if p["allowed"]} == {
        "chat", "comment", "add_to_queue"
    }  # fmt: skip
    stranger = rpc(conn, "zed", "select public.get_room_permissions(%s)", party)
    assert stranger["role"] is None and not any(p["allowed"] for p in stranger["permissions"])


def test_get_room_permissions_hides_private_rooms(conn):
    room = new_room(conn, public=False)
    with pytest.raises(errors.NoDataFound, match="not found"):
        rpc(conn, "zed", "select public.get_room_permissions(%s)", room)


def test_co_host_kicks_members_but_not_the_host_or_other_co_hosts(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    set_role(conn, "alice", party, "carol", "co_host")
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        rpc(conn, "bob", "select public.kick_member(%s, 'alice')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        rpc(conn, "bob", "select public.kick_member(%s, 'carol')", party)
    assert rpc(conn, "bob", "select public.kick_member(%s, 'dave')", party)["status"] == "kicked"
    assert set(roles(conn, party)) == {"alice", "bob", "carol"}


def test_members_still_cannot_kick(conn, party):
    with pytest.raises(errors.InsufficientPrivilege, match="kick"):
        rpc(conn, "bob", "select public.kick_member(%s, 'carol')", party)


def test_the_map_can_let_members_kick_viewers(conn, party):
    set_permission(conn, "alice", party, "kick", "member")
    set_role(conn, "alice", party, "dave", "viewer")
    rpc(conn, "bob", "select public.kick_member(%s, 'dave')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        rpc(conn, "bob", "select public.kick_member(%s, 'carol')", party)


def test_succession_prefers_the_longest_present_co_host(conn, party):
    set_role(conn, "alice", party, "dave", "co_host")
    set_role(conn, "alice", party, "carol", "co_host")
    rpc(conn, "alice", "select public.leave_room(%s)", party)
    # bob joined first but is a member; carol is the longest-present co-host.
    assert roles(conn, party) == {"bob": "member", "carol": "host", "dave": "co_host"}


def test_succession_without_co_hosts_is_unchanged(conn, party):
    rpc(conn, "alice", "select public.leave_room(%s)", party)
    assert roles(conn, party)["bob"] == "host"


def test_maintenance_hands_a_stale_host_on_to_a_co_host(conn, party):
    set_role(conn, "alice", party, "dave", "co_host")
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = now() - interval '1 hour'"
        " where room_id = %s and user_id = 'alice'",
        (party,),
    )
    summary = conn.execute("select watchium_private.maintain_rooms()").fetchone()[0]
    assert summary["stale_members_removed"] == 1 and summary["hosts_transferred"] == 1
    assert roles(conn, party)["dave"] == "host"


def test_a_former_host_is_a_member_again(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    rpc(conn, "alice", "select public.transfer_host(%s, 'bob')", party)
    assert roles(conn, party)["alice"] == "member" and roles(conn, party)["bob"] == "host"


# -------------------------------------------------------------------------------------------
# Co-host control (revision 0016): the same reference, under the same lock, one host.
# -------------------------------------------------------------------------------------------
def reference(conn: Conn, room_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select is_playing, current_playback_time, host_user_id from public.rooms where room_id = %s",
        (room_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_co_host_pauses_and_moves_the_one_reference(conn, party):
    rpc(conn, "alice", "select public.change_playback_state(%s, true, 10)", party)
    set_role(conn, "alice", party, "bob", "co_host")
    state = rpc(conn, "bob", "select public.change_playback_state(%s, false, 42)", party)
    assert (state["is_playing"], state["host_user_id"], state["controlled_by"]) == (False, "alice", "bob")
    assert reference(conn, party) == (False, 42, "alice")
    rpc(conn, "bob", "select public.seek_to_time(%s, 100)", party)
    rpc(conn, "bob", "select public.set_playback_speed(%s, 1.5)", party)
    assert reference(conn, party)[1] == 100
    last = events(conn, party, "playback")[-1]
    assert last["controlled_by"] == "bob" and last["action"] == "speed"
    # The host's control still names the host.
    assert rpc(conn, "alice", "select public.seek_to_time(%s, 5)", party)["controlled_by"] == "alice"
    assert roles(conn, party)["alice"] == "host"


def test_members_and_viewers_do_not_control_by_default(conn, party):
    set_role(conn, "alice", party, "dave", "viewer")
    for user in ("bob", "dave"):
        with pytest.raises(errors.InsufficientPrivilege, match="controls playback"):
            rpc(conn, user, "select public.change_playback_state(%s, true)", party)
    assert reference(conn, party)[0] is False


def test_the_map_can_give_control_to_every_member(conn, party):
    set_permission(conn, "alice", party, "control_playback", "member")
    assert rpc(conn, "carol", "select public.seek_to_time(%s, 7)", party)["controlled_by"] == "carol"
    set_role(conn, "alice", party, "dave", "viewer")
    with pytest.raises(errors.InsufficientPrivilege):
        rpc(conn, "dave", "select public.seek_to_time(%s, 8)", party)


def test_a_demoted_co_host_loses_control(conn, party):
    set_role(conn, "alice", party, "bob", "co_host")
    rpc(conn, "bob", "select public.change_playback_state(%s, true)", party)
    set_role(conn, "alice", party, "bob", "member")
    with pytest.raises(errors.InsufficientPrivilege):
        rpc(conn, "bob", "select public.change_playback_state(%s, false)", party)


def test_a_private_room_hides_itself_from_a_stranger_controlling(conn):
    room = new_room(conn, public=False)
    with pytest.raises(errors.NoDataFound, match="not found"):
        rpc(conn, "zed", "select public.change_playback_state(%s, true)", room)
