"""Bans and mutes with expiry, kick with a ban, hidden comments (revisions 0017-0019). Each way round
a ban or a mute that a client could try has a test."""

from __future__ import annotations

import json
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
POST = "select public.post_comment('a1', 1, %s, p_room_id => %s)"
CHAT = "select public.broadcast_to_room(%s, 'chat_message', %s)"


def rpc(conn: Conn, user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def new_room(conn: Conn, host: str = "alice", *, public: bool = True) -> dict[str, Any]:
    created: dict[str, Any] = rpc(conn, host, CREATE, host.capitalize(), public)
    return created


def join(conn: Conn, user: str, room_id: str, key: str | None = None) -> Any:
    return rpc(conn, user, "select public.join_room(%s, %s, %s)", room_id, key, user.capitalize())


def members(conn: Conn, room_id: str) -> set[str]:
    rows = conn.execute("select user_id from public.room_members where room_id = %s", (room_id,))
    return {u for (u,) in rows.fetchall()}


def events(conn: Conn, room_id: str, name: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select payload from watchium_private.room_events where room_id = %s and event = %s"
        " order by event_id",
        (room_id, name),
    ).fetchall()
    return [p for (p,) in rows]


def chat(conn: Conn, user: str, room_id: str, message: str = "hi") -> Any:
    return rpc(conn, user, CHAT, room_id, json.dumps({"message": message}))


def expire(conn: Conn, table: str, room_id: str, user: str) -> None:
    """Move a ban or mute into the past, as time passing would."""
    conn.execute(
        f"update watchium_private.{table} set created_at = now() - interval '2 hours',"
        " ends_at = now() - interval '1 second' where room_id = %s and user_id = %s",
        (room_id, user),
    )


@pytest.fixture
def party(conn: Conn) -> str:
    """alice hosts; bob and carol are members, dave a co-host."""
    room: str = new_room(conn)["room"]["room_id"]
    for user in ("bob", "carol", "dave"):
        join(conn, user, room)
    rpc(conn, "alice", "select public.set_member_role(%s, 'dave', 'co_host')", room)
    return room


# Bans ---------------------------------------------------------------------------------------


def test_a_ban_with_expiry_removes_refuses_then_lapses(conn, party):
    result = rpc(conn, "dave", "select public.ban_member(%s, 'bob', 60, 'spoilers')", party)
    assert result["removed"] and result["ends_at"] is not None
    assert "bob" not in members(conn, party)
    assert [e["user_id"] for e in events(conn, party, "member_banned")] == ["bob"]
    assert events(conn, party, "member_kicked")[-1] == {"user_id": "bob", "kicked_by": "dave"}
    with pytest.raises(errors.InsufficientPrivilege, match=r"banned from room .* until") as caught:
        join(conn, "bob", party)
    assert caught.value.diag.message_hint == "Reason: spoilers"
    # Expiry is a comparison: once the end passed, the ban no longer counts, no job needed.
    expire(conn, "room_bans", party, "bob")
    assert join(conn, "bob", party)["status"] == "joined"
    summary = conn.execute("select watchium_private.maintain_rooms()").fetchone()[0]
    assert summary["expired_bans_deleted"] == 1
    assert conn.execute("select count(*) from watchium_private.room_bans").fetchone() == (0,)


def test_a_banned_user_cannot_rejoin_with_a_new_key(conn):
    created = new_room(conn, public=False)
    room, key = created["room"]["room_id"], created["access_key"]
    join(conn, "bob", room, key)
    rpc(conn, "alice", "select public.ban_member(%s, 'bob')", room)
    new_key = rpc(conn, "alice", "select public.update_room(%s, p_rotate_access_key => true)", room)[
        "access_key"
    ]
    with pytest.raises(errors.InsufficientPrivilege, match=r"banned from room .* for good"):
        join(conn, "bob", room, new_key)
    # Without the key the ban is not told: a private room stays hidden.
    assert join(conn, "bob", room, "000000" if new_key != "000000" else "111111")["status"] == (
        "invalid_access_key"
    )


def test_users_who_are_not_members_can_be_banned_in_advance(conn, party):
    assert not rpc(conn, "alice", "select public.ban_member(%s, 'mallory', 3600)", party)["removed"]
    with pytest.raises(errors.InsufficientPrivilege, match="banned"):
        join(conn, "mallory", party)


def test_nobody_bans_the_host_an_equal_or_themselves(conn, party):
    rpc(conn, "alice", "select public.set_member_role(%s, 'carol', 'co_host')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        rpc(conn, "dave", "select public.ban_member(%s, 'alice')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        rpc(conn, "dave", "select public.ban_member(%s, 'carol')", party)
    with pytest.raises(errors.InvalidParameterValue, match="yourself"):
        rpc(conn, "dave", "select public.ban_member(%s, 'dave')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="ban"):
        rpc(conn, "bob", "select public.ban_member(%s, 'carol')", party)
    assert members(conn, party) == {"alice", "bob", "carol", "dave"}
    assert conn.execute("select count(*) from watchium_private.room_bans").fetchone() == (0,)


def test_bad_durations_are_22023(conn, party):
    for seconds in (0, -5, 315360001):
        with pytest.raises(errors.InvalidParameterValue, match="p_duration_seconds"):
            rpc(conn, "alice", "select public.ban_member(%s, 'bob', %s)", party, seconds)


def test_kick_may_ban_and_needs_the_ban_permission_for_it(conn, party):
    kicked = rpc(conn, "dave", "select public.kick_member(%s, 'bob', 600)", party)
    assert kicked["banned_until"] is not None
    with pytest.raises(errors.InsufficientPrivilege, match="banned"):
        join(conn, "bob", party)
    # A kick without a ban lets the user back at once, as before.
    rpc(conn, "dave", "select public.kick_member(%s, 'carol')", party)
    assert join(conn, "carol", party)["status"] == "joined"
    # kick stays the co-host's, ban becomes the host's: a co-host's kick-with-ban is refused whole.
    rpc(conn, "alice", "select public.set_room_permission(%s, 'ban', 'host')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="ban"):
        rpc(conn, "dave", "select public.kick_member(%s, 'carol', 600)", party)
    assert "carol" in members(conn, party)


def test_unban_lets_the_user_back(conn, party):
    rpc(conn, "alice", "select public.ban_member(%s, 'bob')", party)
    assert rpc(conn, "dave", "select public.unban_member(%s, 'bob')", party)["status"] == "unbanned"
    assert rpc(conn, "dave", "select public.unban_member(%s, 'bob')", party)["status"] == "not_banned"
    assert events(conn, party, "member_unbanned") == [{"user_id": "bob", "unbanned_by": "dave"}]
    assert join(conn, "bob", party)["status"] == "joined"


# Mutes --------------------------------------------------------------------------------------


def test_a_muted_member_cannot_comment_broadcast_or_edit_even_after_rejoining(conn, party):
    comment = rpc(conn, "bob", POST, "before", party)
    rpc(conn, "dave", "select public.mute_member(%s, 'bob', 600, false, 'calm down')", party)
    assert events(conn, party, "member_muted")[0]["user_id"] == "bob"
    with pytest.raises(errors.InsufficientPrivilege, match="muted in room"):
        rpc(conn, "bob", POST, "hello", party)
    with pytest.raises(errors.InsufficientPrivilege, match="muted in room"):
        chat(conn, "bob", party)
    with pytest.raises(errors.InsufficientPrivilege, match="muted in room"):
        rpc(conn, "bob", "select public.edit_comment(%s, 'edited')", comment["id"])
    rpc(conn, "bob", "select public.leave_room(%s)", party)
    join(conn, "bob", party)
    with pytest.raises(errors.InsufficientPrivilege, match="muted in room"):
        rpc(conn, "bob", POST, "hello again", party)
    rpc(conn, "dave", "select public.unmute_member(%s, 'bob')", party)
    assert rpc(conn, "bob", POST, "thanks", party)["message"] == "thanks"
    assert chat(conn, "bob", party) > 0


def test_a_mute_lapses_by_itself(conn, party):
    rpc(conn, "alice", "select public.mute_member(%s, 'bob', 60)", party)
    expire(conn, "room_mutes", party, "bob")
    assert rpc(conn, "bob", POST, "free", party)["message"] == "free"
    assert conn.execute("select watchium_private.maintain_rooms()").fetchone()[0][
        "expired_mutes_deleted"
    ] == 1


def test_a_shadow_mute_delivers_only_to_the_author(conn, party):
    assert rpc(conn, "alice", "select public.mute_member(%s, 'bob', null, true)", party)["shadow"]
    assert events(conn, party, "member_muted") == []
    before = len(events(conn, party, "comment_added"))
    mine = rpc(conn, "bob", POST, "nobody hears me", party)
    assert mine["message"] == "nobody hears me" and mine["hidden_at"] is None
    assert len(events(conn, party, "comment_added")) == before
    sent = chat(conn, "bob", party, "shh")
    assert isinstance(sent, int) and sent > 0
    assert [e for e in events(conn, party, "chat_message") if e["user_id"] == "bob"] == []

    def listed(user: str) -> list[str]:
        page = rpc(conn, user, "select public.get_comments('a1', 1, %s)", party)
        return [
            c["message"]
            for c in page["items"]
            if c["user_id"] == "bob" and not c["is_system_message"]
        ]

    assert listed("bob") == ["nobody hears me"]
    assert listed("carol") == []
    with as_user(conn, "carol") as c:
        assert c.execute("select count(*) from public.comments where user_id = 'bob' and not is_system_message").fetchone() == (0,)
    with as_user(conn, "bob") as c:
        assert c.execute("select count(*) from public.comments where user_id = 'bob' and not is_system_message").fetchone() == (1,)
    with as_user(conn, None, role="anon") as c:
        assert c.execute("select count(*) from public.comments where user_id = 'bob' and not is_system_message").fetchone() == (0,)


def test_mutes_are_for_lower_roles_and_moderators(conn, party):
    with pytest.raises(errors.InsufficientPrivilege, match="lower role"):
        rpc(conn, "dave", "select public.mute_member(%s, 'alice')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="mute"):
        rpc(conn, "bob", "select public.mute_member(%s, 'carol')", party)
    with pytest.raises(errors.NoDataFound):
        rpc(conn, "dave", "select public.mute_member(%s, 'stranger')", party)


def test_viewers_read_but_do_not_speak_by_default(conn, party):
    rpc(conn, "alice", "select public.set_member_role(%s, 'carol', 'viewer')", party)
    with pytest.raises(errors.InsufficientPrivilege, match="comment"):
        rpc(conn, "carol", POST, "hi", party)
    with pytest.raises(errors.InsufficientPrivilege, match="chat"):
        chat(conn, "carol", party)
    assert rpc(conn, "carol", "select public.get_comments('a1', 1, %s)", party)["items"]


def test_a_co_host_may_send_playback_broadcasts(conn, party):
    rpc(conn, "dave", "select public.broadcast_to_room(%s, 'pause', '{\"current_time\": 3}')", party)
    with pytest.raises(errors.InsufficientPrivilege):
        rpc(conn, "bob", "select public.broadcast_to_room(%s, 'pause', '{\"current_time\": 3}')", party)


# Moderating comments ------------------------------------------------------------------------


def test_the_host_hides_a_banned_members_comments(conn, party):
    rpc(conn, "bob", POST, "spam 1", party)
    rpc(conn, "bob", POST, "spam 2", party)
    with pytest.raises(psycopg.Error) as member:
        rpc(conn, "alice", "select public.hide_member_comments(%s, 'bob')", party)
    assert member.value.sqlstate == "WD409"
    rpc(conn, "alice", "select public.ban_member(%s, 'bob', 3600)", party)
    with pytest.raises(errors.InsufficientPrivilege):
        rpc(conn, "carol", "select public.hide_member_comments(%s, 'bob')", party)
    assert rpc(conn, "alice", "select public.hide_member_comments(%s, 'bob')", party)["hidden"] == 2
    assert events(conn, party, "comments_hidden") == [{"user_id": "bob", "hidden_by": "alice", "count": 2}]
    page = rpc(conn, "carol", "select public.get_comments('a1', 1, %s)", party)
    assert [c for c in page["items"] if c["user_id"] == "bob" and not c["is_system_message"]] == []


def test_comment_moderation_follows_the_permission_and_the_ranks(conn, party):
    bobs = rpc(conn, "bob", POST, "hm", party)
    alices = rpc(conn, "alice", POST, "host speaking", party)
    assert rpc(conn, "dave", "select public.delete_comment(%s)", bobs["id"])["status"] == "deleted"
    with pytest.raises(errors.InsufficientPrivilege):
        rpc(conn, "dave", "select public.delete_comment(%s)", alices["id"])
    carols = rpc(conn, "carol", POST, "mine", party)
    with pytest.raises(errors.InsufficientPrivilege):
        rpc(conn, "bob", "select public.delete_comment(%s)", carols["id"])


def test_get_room_moderation_is_for_moderators(conn, party):
    rpc(conn, "alice", "select public.ban_member(%s, 'mallory', 60, 'troll')", party)
    rpc(conn, "alice", "select public.mute_member(%s, 'bob', null, true, 'quiet')", party)
    seen = rpc(conn, "dave", "select public.get_room_moderation(%s)", party)
    assert [(b["user_id"], b["reason"]) for b in seen["bans"]] == [("mallory", "troll")]
    assert [(m["user_id"], m["shadow"]) for m in seen["mutes"]] == [("bob", True)]
    for user in ("bob", "carol"):
        with pytest.raises(errors.InsufficientPrivilege):
            rpc(conn, user, "select public.get_room_moderation(%s)", party)


def test_clients_cannot_read_or_write_bans_and_mutes(conn, party):
    rpc(conn, "alice", "select public.ban_member(%s, 'mallory')", party)
    for table in ("room_bans", "room_mutes"):
        with pytest.raises(errors.InsufficientPrivilege), as_user(conn, "mallory") as c:
            c.execute(f"delete from watchium_private.{table}")
        with pytest.raises(errors.InsufficientPrivilege), as_user(conn, "alice") as c:
            c.execute(f"select * from watchium_private.{table}")
