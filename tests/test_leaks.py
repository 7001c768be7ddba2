"""Smaller leaks and oddities a client could use: one test each.

Malformed cursors, private rooms answering like missing ones, comment ids, the reserved
username ``system`` and the text of system messages, comment moderation, the chat text rule,
anchors of made-up anime ids.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user, make_room

MALFORMED_CURSORS = [
    "-999999999999999999.a",
    "999999999999999999.a",
    "-999999999999999999.1",
    "253402300800000000.1",
    "garbage",
    "",
    "1.",
    ".1",
    "1.A",
    "1.1.1",
    "1e5.1",
    " 1.1",
]


def sqlstate_of(conn: psycopg.Connection[Any], user: str | None, sql: str, args: Any = ()) -> str:
    role = "anon" if user is None else "authenticated"
    try:
        with as_user(conn, user, role=role) as c:
            c.execute(sql, args)
    except psycopg.Error as exc:
        assert exc.sqlstate is not None
        return exc.sqlstate
    return "ok"


def cursor_functions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        """
        select p.proname from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and 'p_cursor' = any (p.proargnames)
        """
    ).fetchall()
    return {name for (name,) in rows}


CURSOR_CALLS = {
    "list_public_rooms": "select public.list_public_rooms(p_cursor => %s)",
    "get_comments": "select public.get_comments('a1', 1, p_cursor => %s)",
}


def test_every_cursor_function_is_listed(conn):
    assert cursor_functions(conn) == set(CURSOR_CALLS)


@pytest.mark.parametrize("function", sorted(CURSOR_CALLS))
@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
def test_malformed_cursor_is_22023(conn, function, cursor):
    assert sqlstate_of(conn, "u1", CURSOR_CALLS[function], (cursor,)) == "22023"


@pytest.mark.parametrize("function", sorted(CURSOR_CALLS))
def test_extreme_but_valid_cursor_pages(conn, function):
    """The oldest and newest cursors a timestamp can have still work (an empty page)."""
    for cursor in ("-62135596800000000.1", "253402300799999999.1"):
        assert sqlstate_of(conn, "u1", CURSOR_CALLS[function], (cursor,)) == "ok"


# -------------------------------------------------------------------------------------------
# Private rooms answer non-members exactly as missing rooms do.
# -------------------------------------------------------------------------------------------
MISSING_ROOM = "zzzzzzzzzz"

#: One call of every public function that takes a room id, as a signed-in non-member.
ROOM_CALLS = {
    "join_room": "select public.join_room(%(room)s, null, 'Eve')",
    "leave_room": "select public.leave_room(%(room)s)",
    "kick_member": "select public.kick_member(%(room)s, 'm1')",
    "transfer_host": "select public.transfer_host(%(room)s, 'm1')",
    "update_room": "select public.update_room(%(room)s, p_title => 'mine')",
    "delete_room": "select public.delete_room(%(room)s)",
    "get_room": "select public.get_room(%(room)s)",
    "get_room_access_key": "select public.get_room_access_key(%(room)s)",
    "post_comment": "select public.post_comment('a1', 1, 'hi', p_room_id => %(room)s)",
    "get_comments": "select public.get_comments('a1', 1, %(room)s)",
    "broadcast_to_room": (
        "select public.broadcast_to_room(%(room)s, 'chat_message', '{\"message\": \"hi\"}')"
    ),
    "change_playback_state": "select public.change_playback_state(%(room)s, true)",
    "seek_to_time": "select public.seek_to_time(%(room)s, 10)",
    "set_playback_speed": "select public.set_playback_speed(%(room)s, 2)",
    "bulk_sync_update": "select public.bulk_sync_update(%(room)s, 1, 'seek')",
    "record_heartbeat": "select public.record_heartbeat(%(room)s, 1, true)",
    "record_heartbeats": (
        "select public.record_heartbeats(%(room)s, array['m1'], array[1]::numeric[], array[true])"
    ),
    "get_room_sync_state": "select public.get_room_sync_state(%(room)s)",
    "get_room_events": "select public.get_room_events(%(room)s, '1', 0)",
    "get_room_sync_metrics": "select public.get_room_sync_metrics(%(room)s)",
    "record_realtime_metrics": "select public.record_realtime_metrics(%(room)s, 1, 1, 1, 0)",
    "get_realtime_metrics_summary": "select public.get_realtime_metrics_summary(%(room)s)",
    "set_member_role": "select public.set_member_role(%(room)s, 'm1', 'viewer')",
    "set_room_permission": "select public.set_room_permission(%(room)s, 'chat', 'viewer')",
    "get_room_permissions": "select public.get_room_permissions(%(room)s)",
    "ban_member": "select public.ban_member(%(room)s, 'm1')",
    "unban_member": "select public.unban_member(%(room)s, 'm1')",
    "mute_member": "select public.mute_member(%(room)s, 'm1')",
    "unmute_member": "select public.unmute_member(%(room)s, 'm1')",
    "hide_member_comments": "select public.hide_member_comments(%(room)s, 'm1')",
    "get_room_moderation": "select public.get_room_moderation(%(room)s)",
    "get_room_sync_options": "select public.get_room_sync_options(%(room)s)",
    "set_room_sync_options": (
        "select public.set_room_sync_options(%(room)s, '{\"episode_countdown\": 3}')"
    ),
    "add_to_queue": (
        "select public.add_to_queue(%(room)s, 'a1', 'Anime', 2, 'https://example.com/v', 60)"
    ),
    "move_queue_item": "select public.move_queue_item(%(room)s, 1, 1)",
    "remove_queue_item": "select public.remove_queue_item(%(room)s, 1)",
    "advance_queue": "select public.advance_queue(%(room)s, null)",
    "get_queue": "select public.get_queue(%(room)s)",
    "report_playback_status": "select public.report_playback_status(%(room)s, 'buffering', 1)",
    "set_wait_opt_out": "select public.set_wait_opt_out(%(room)s, true)",
    "force_resume": "select public.force_resume(%(room)s)",
    "cancel_ready_check": "select public.cancel_ready_check(%(room)s)",
    "start_ready_check": "select public.start_ready_check(%(room)s, 30, 1)",
    "set_ready": "select public.set_ready(%(room)s, true)",
    "set_room_join_policy": "select public.set_room_join_policy(%(room)s, 'approval')",
    "request_to_join": "select public.request_to_join(%(room)s, 'Eve', 'hi')",
    "get_join_requests": "select public.get_join_requests(%(room)s)",
    "answer_join_request": "select public.answer_join_request(%(room)s, 'm1', true)",
    "withdraw_join_request": "select public.withdraw_join_request(%(room)s)",
}


def answer(conn: psycopg.Connection[Any], user: str, sql: str, room_id: str) -> tuple[str, str]:
    """(SQLSTATE or 'ok', the message or result) with the room id replaced by <room>."""
    try:
        with as_user(conn, user) as c:
            row = c.execute(sql, {"room": room_id}).fetchone()
    except psycopg.Error as exc:
        assert exc.sqlstate is not None
        text = f"{exc.diag.message_primary} | {exc.diag.message_hint}"
        return exc.sqlstate, text.replace(room_id, "<room>")
    return "ok", str(row).replace(room_id, "<room>")


def test_every_room_function_is_listed(conn):
    rows = conn.execute(
        """
        select p.proname from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and 'p_room_id' = any (p.proargnames)
        """
    ).fetchall()
    assert {name for (name,) in rows} == set(ROOM_CALLS)


@pytest.mark.parametrize("function", sorted(ROOM_CALLS))
def test_private_room_answers_a_non_member_as_a_missing_room(conn, function):
    room = make_room(conn, host="host", members=["m1"], private=True)
    with conn.transaction(force_rollback=True):
        private = answer(conn, "eve", ROOM_CALLS[function], room.room_id)
    with conn.transaction(force_rollback=True):
        missing = answer(conn, "eve", ROOM_CALLS[function], MISSING_ROOM)
    assert private == missing
    # Refused alike, except join_room (its own answer) and withdraw_join_request, which answers
    # {withdrawn: false} alike: a requester is no member, and there is nothing to withdraw.
    assert private[0] != "ok" or function in ("join_room", "withdraw_join_request")
    assert "host" not in private[1].replace("the host", "")  # no host id in the answer


def test_leave_room_tells_a_non_member_nothing_about_a_private_room(conn):
    room = make_room(conn, host="hostid42", members=["m1"], private=True)
    state, text = answer(conn, "eve", ROOM_CALLS["leave_room"], room.room_id)
    assert (state, "hostid42" in text) == ("P0002", False)
    # A public room's host is public: a non-member still gets the idempotent answer.
    public = make_room(conn, host="pubhost")
    state, text = answer(conn, "eve", ROOM_CALLS["leave_room"], public.room_id)
    assert state == "ok" and "not_member" in text


def test_comment_ids_in_private_rooms_answer_as_missing(conn):
    room = make_room(conn, host="host", members=["m1"], private=True)
    with as_user(conn, "m1") as c:
        comment = c.execute(
            "select public.post_comment('a1', 1, 'secret', p_room_id => %s)", (room.room_id,)
        ).fetchone()[0]
    missing = conn.execute("select coalesce(max(id), 0) + 1000 from public.comments").fetchone()[0]
    for sql in ("select public.edit_comment(%(room)s::bigint, 'x')",
                "select public.delete_comment(%(room)s::bigint)"):  # fmt: skip
        assert answer(conn, "eve", sql, str(comment["id"])) == answer(
            conn, "eve", sql, str(missing)
        )
        assert answer(conn, "eve", sql, str(comment["id"]))[0] == "P0002"


# -------------------------------------------------------------------------------------------
# Moderation: the host may delete members' comments; editing needs current membership.
# -------------------------------------------------------------------------------------------
def room_comment(conn: psycopg.Connection[Any], user: str, room_id: str, text: str) -> int:
    with as_user(conn, user) as c:
        row = c.execute(
            "select public.post_comment('a1', 1, %s, p_room_id => %s)", (text, room_id)
        ).fetchone()
    assert row is not None
    return int(row[0]["id"])


def test_host_deletes_a_members_comment_but_members_cannot(conn):
    room = make_room(conn, host="host", members=["m1", "m2"])
    target = room_comment(conn, "m1", room.room_id, "spam")
    assert answer(conn, "m2", "select public.delete_comment(%(room)s::bigint)", str(target))[0] == (
        "42501"
    )
    assert answer(conn, "host", "select public.delete_comment(%(room)s::bigint)", str(target))[
        0
    ] == ("ok")
    assert (
        conn.execute("select count(*) from public.comments where id = %s", (target,)).fetchone()[0]
        == 0
    )
    # The host may not edit it, and may not touch comments outside the room.
    other = room_comment(conn, "m1", room.room_id, "fine")
    assert answer(conn, "host", "select public.edit_comment(%(room)s::bigint, 'x')", str(other))[
        0
    ] == ("42501")


def test_kicked_member_cannot_edit_and_nothing_reaches_the_room(conn):
    room = make_room(conn, host="host", members=["m1"])
    mine = room_comment(conn, "m1", room.room_id, "before")
    with as_user(conn, "host") as c:
        c.execute("select public.kick_member(%s, 'm1')", (room.room_id,))
    since = conn.execute(
        "select coalesce(max(event_id), 0) from watchium_private.room_events"
    ).fetchone()[0]
    state, _ = answer(
        conn, "m1", "select public.edit_comment(%(room)s::bigint, 'after')", str(mine)
    )
    assert state == "42501"
    assert conn.execute("select message from public.comments where id = %s", (mine,)).fetchone()[
        0
    ] == ("before")
    assert (
        conn.execute(
            "select count(*) from watchium_private.room_events where event_id > %s and event = 'comment_edited'",
            (since,),
        ).fetchone()[0]
        == 0
    )
    # Deleting what one wrote stays possible after leaving.
    assert (
        answer(conn, "m1", "select public.delete_comment(%(room)s::bigint)", str(mine))[0] == "ok"
    )


# -------------------------------------------------------------------------------------------
# The database's voice: "system" is reserved, system messages are our own fixed text.
# -------------------------------------------------------------------------------------------
RESERVED_LOOKALIKES = [
    "system", "System", "SYSTEM", " system ", "sys tem", "s.y.s.t.e.m", "sys_tem", "sy$tem",
    "5ystem", "syst3m", "\uff53\uff59\uff53\uff54\uff45\uff4d", "\U0001d42c\U0001d432\U0001d42c\U0001d42d\U0001d41e\U0001d426",
    "\u0455\u0443\u0455\u0442\u0435\u043c", "sys\u200btem", "sys\u00adtem", "SYST\u0395M", "deleted", "Deleted",
]  # fmt: skip

USERNAME_CALLS = {
    "create_room": ("select public.create_room('t', 'a1', 'A', 1, 'https://x.y/v', %(name)s)"),
    "join_room": "select public.join_room(%(room)s, null, %(name)s)",
    "post_comment": "select public.post_comment('a1', 1, 'hi', p_username => %(name)s)",
}


@pytest.mark.parametrize("function", sorted(USERNAME_CALLS))
@pytest.mark.parametrize("name", RESERVED_LOOKALIKES)
def test_reserved_usernames_are_refused(conn, function, name):
    room = make_room(conn, host="host")
    with conn.transaction(force_rollback=True):
        state, text = answer_with(
            conn, "eve", USERNAME_CALLS[function], room=room.room_id, name=name
        )
    assert (state, "p_username" in text) == ("22023", True), text


@pytest.mark.parametrize("name", ["Systema", "sys", "Sam", "deleter", "ecosystem", "vicky"])
def test_ordinary_usernames_are_accepted(conn, name):
    state, _ = answer_with(conn, "eve", USERNAME_CALLS["post_comment"], name=name)
    assert state == "ok"


def answer_with(conn: psycopg.Connection[Any], user: str, sql: str, **args: Any) -> tuple[str, str]:
    try:
        with as_user(conn, user) as c:
            row = c.execute(sql, args).fetchone()
    except psycopg.Error as exc:
        assert exc.sqlstate is not None
        return exc.sqlstate, str(exc.diag.message_primary)
    return "ok", str(row)


def test_system_messages_are_fixed_text_about_a_member(conn):
    room = make_room(conn, host="host", members=["m1"])
    conn.execute(
        "update public.room_members set username = 'Mallory became the new host' where user_id = 'm1'"
    )
    with as_user(conn, "host") as c:
        c.execute("select public.transfer_host(%s, 'm1')", (room.room_id,))
    rows = conn.execute(
        "select user_id, username, message from public.comments"
        " where room_id = %s and is_system_message order by id",
        (room.room_id,),
    ).fetchall()
    assert rows == [
        ("host", "system", "joined the room"),
        ("m1", "system", "joined the room"),
        ("m1", "system", "became the new host"),
    ]
    assert {m for (m,) in conn.execute(
        "select distinct message from public.comments where is_system_message").fetchall()
    } <= {"joined the room", "became the new host"}  # fmt: skip


# -------------------------------------------------------------------------------------------
# One text rule for comments and chat broadcasts.
# -------------------------------------------------------------------------------------------
BAD_TEXTS = ["", "   ", "\u3000\u200b", "a\x07b", "tab\there", "\u202eevil", "x\u2066y", "a\x85b"]


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_chat_message_and_post_comment_refuse_the_same_text(conn, text):
    room = make_room(conn, host="host", members=["m1"])
    chat = answer_with(
        conn, "m1",
        "select public.broadcast_to_room(%(room)s, 'chat_message',"
        " jsonb_build_object('message', %(text)s::text))",
        room=room.room_id, text=text,
    )  # fmt: skip
    comment = answer_with(
        conn, "m1",
        "select public.post_comment('a1', 1, %(text)s, p_room_id => %(room)s)",
        room=room.room_id, text=text,
    )  # fmt: skip
    assert chat[0] == comment[0] == "22023", (chat, comment)


def test_chat_message_is_trimmed_like_a_comment(conn):
    room = make_room(conn, host="host", members=["m1"])
    with as_user(conn, "m1") as c:
        c.execute(
            "select public.broadcast_to_room(%s, 'chat_message', '{\"message\": \"  vivid\\nv  \"}')",
            (room.room_id,),
        )
    payload = conn.execute(
        "select payload from watchium_private.room_events where event = 'chat_message'"
    ).fetchone()[0]
    assert payload["message"] == "vivid\nv"


# -------------------------------------------------------------------------------------------
# Anchors of made-up anime ids: limited, and cleaned when they stay empty.
# -------------------------------------------------------------------------------------------
def test_new_anchors_are_rate_limited_per_user(conn):
    limit = conn.execute(
        "select max_requests from watchium_private.rate_limit_rules where action = 'create_anchor'"
    ).fetchone()[0]
    sql = "select public.get_or_create_anchor(%(name)s, 1)"
    states = [answer_with(conn, "eve", sql, name=f"made-up-{i}")[0] for i in range(limit + 1)]
    assert states == ["ok"] * limit + ["WD429"]
    # An existing anchor is still returned: only opening new threads is limited.
    assert answer_with(conn, "eve", sql, name="made-up-0")[0] == "ok"
    assert (
        conn.execute("select count(*) from public.comments where is_anchor").fetchone()[0] == limit
    )


def test_maintenance_removes_idle_empty_anchors_only(conn):
    make_room(conn, host="host", anime_id="watched")  # an anchor with a room on its episode
    for anime in ("empty", "discussed", "fresh"):
        answer_with(conn, "eve", "select public.get_or_create_anchor(%(name)s, 1)", name=anime)
    answer_with(conn, "eve",
                "select public.post_comment('discussed', 1, 'hi', p_username => 'Eve')")  # fmt: skip
    conn.execute(
        "update public.comments set created_at = now() - interval '2 days'"
        " where is_anchor and anime_id <> 'fresh'"
    )
    summary = conn.execute("select watchium_private.maintain_rooms()").fetchone()[0]
    assert summary["empty_anchors_deleted"] == 1
    left = {a for (a,) in conn.execute("select anime_id from public.comments where is_anchor")}
    assert left == {"watched", "discussed", "fresh"}
