"""Comments: posting (validation, membership, threads), editing, deleting, paging, anchors."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user

Conn = psycopg.Connection[Any]

CREATE = (
    "select public.create_room(p_title => 'Party', p_anime_id => 'a1', p_anime_title => 'Anime',"
    " p_episode_number => 1, p_video_url => 'https://example.com/v', p_username => %s,"
    " p_is_public => %s)"
)
POST = "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1, p_message => %s, p_username => 'Bob')"


def rpc(conn: Conn, user: str | None, sql: str, params: Any = ()) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def expect_error(
    conn: Conn, user: str | None, sql: str, params: Any, sqlstate: str, words: str
) -> None:
    with pytest.raises(psycopg.Error) as exc:
        rpc(conn, user, sql, params)
    assert exc.value.sqlstate == sqlstate, exc.value
    assert words in str(exc.value), exc.value


def new_room(conn: Conn, host: str = "alice", public: bool = True) -> str:
    room_id: str = rpc(conn, host, CREATE, (host.capitalize(), public))["room"]["room_id"]
    return room_id


def test_post_episode_comment_trims_and_stores(conn):
    comment = rpc(conn, "bob", POST, ("  Great episode!\nReally.  ",))
    assert comment["message"] == "Great episode!\nReally."
    assert comment["user_id"] == "bob" and comment["username"] == "Bob"
    assert comment["room_id"] is None and comment["is_system_message"] is False
    assert comment["is_anchor"] is False


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("", "p_message must be 1 to 2000"),
        (" \n\t ", "p_message must be 1 to 2000"),
        ("x" * 2001, "p_message must be 1 to 2000"),
        ("bell\x07", "p_message must not contain control characters"),
        ("esc\x1b[31m", "p_message must not contain control characters"),
        ("tab\tinside", "p_message must not contain control characters"),
        ("c1\x85", "p_message must not contain control characters"),
    ],
)
def test_post_comment_rejects_bad_messages(conn, message, words):
    expect_error(conn, "bob", POST, (message,), "22023", words)
    assert conn.execute("select count(*) from public.comments").fetchone() == (0,)


@pytest.mark.parametrize("value", ["NaN", "-0.01", "86400.01", "Infinity", "-Infinity", "1e300"])
def test_post_comment_rejects_bad_video_timestamps(conn, value):
    sql = POST.replace(")", ", p_video_timestamp => %s::numeric)")
    expect_error(conn, "bob", sql, ("hi", value), "22023", "p_video_timestamp")


def test_post_comment_other_bad_input(conn):
    base = "select public.post_comment(p_anime_id => %s, p_episode_number => %s, p_message => 'hi', p_username => %s)"
    expect_error(conn, "bob", base, ("", 1, "Bob"), "22023", "p_anime_id")
    expect_error(conn, "bob", base, ("a1", 0, "Bob"), "22023", "p_episode_number")
    expect_error(conn, "bob", base, ("a1", 1, None), "22023", "p_username")
    expect_error(conn, "bob", base, ("a1", 1, "x" * 51), "22023", "p_username")


def test_video_timestamp_is_kept(conn):
    sql = POST.replace(")", ", p_video_timestamp => %s::numeric)")
    assert rpc(conn, "bob", sql, ("at the twist", "754.25"))["video_timestamp"] == 754.25


def test_room_comments_are_for_members_and_emit_comment_added(conn):
    room_id = new_room(conn)
    sql = (
        "select public.post_comment(p_anime_id => 'a1', p_episode_number => %s, p_message => 'hi',"
        " p_room_id => %s, p_username => 'Spoof')"
    )
    expect_error(conn, "bob", sql, (1, room_id), "42501", "only members")
    expect_error(conn, "bob", sql, (1, "zzzzzzzzzz"), "P0002", "not found")
    comment = rpc(conn, "alice", sql, (1, room_id))
    assert comment["room_id"] == room_id and comment["username"] == "Alice"  # the member's name
    expect_error(conn, "alice", sql, (2, room_id), "22023", "p_episode_number")
    payload = conn.execute(
        "select payload from watchium_private.room_events where event = 'comment_added'"
    ).fetchone()
    assert payload is not None and payload[0]["id"] == comment["id"]


def test_replies_stay_in_their_thread(conn):
    parent = rpc(conn, "bob", POST, ("first",))
    reply_sql = POST.replace(")", ", p_parent_id => %s)")
    reply = rpc(conn, "carol", reply_sql, ("second", parent["id"]))
    assert reply["parent_id"] == parent["id"]
    expect_error(conn, "carol", reply_sql, ("x", 999999), "P0002", "p_parent_id")
    other = rpc(
        conn,
        "bob",
        "select public.post_comment('a1', 2, 'ep 2', 'Bob')",
    )
    expect_error(conn, "carol", reply_sql, ("x", other["id"]), "22023", "p_parent_id")
    # A comment of a private room is not a parent for outsiders.
    room_id = new_room(conn, public=False)
    inside = rpc(
        conn,
        "alice",
        "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1, p_message => 'secret', p_room_id => %s)",
        (room_id,),
    )
    expect_error(conn, "carol", reply_sql, ("x", inside["id"]), "P0002", "p_parent_id")


def test_clients_cannot_write_system_messages_or_anchors(conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        rpc(
            conn,
            "bob",
            "insert into public.comments (anime_id, episode_number, username, message, is_system_message)"
            " values ('a1', 1, 'system', 'fake', true) returning id",
        )
    with pytest.raises(psycopg.errors.UndefinedFunction):  # no such parameter exists
        rpc(conn, "bob", POST.replace(")", ", p_is_system_message => true)"), ("x",))


def test_edit_and_delete_own_comments_only(conn):
    comment = rpc(conn, "bob", POST, ("typo",))
    edited = rpc(conn, "bob", "select public.edit_comment(%s, ' fixed ')", (comment["id"],))
    assert edited["message"] == "fixed"
    expect_error(
        conn,
        "carol",
        "select public.edit_comment(%s, 'mine')",
        (comment["id"],),
        "42501",
        "not yours",
    )
    expect_error(
        conn, "bob", "select public.edit_comment(%s, '')", (comment["id"],), "22023", "p_message"
    )
    expect_error(conn, "bob", "select public.edit_comment(424242, 'x')", (), "P0002", "not found")
    expect_error(
        conn, "carol", "select public.delete_comment(%s)", (comment["id"],), "42501", "not yours"
    )
    room_id = new_room(conn)
    system_id = conn.execute(
        "select id from public.comments where room_id = %s and is_system_message", (room_id,)
    ).fetchone()
    anchor_id = conn.execute("select id from public.comments where is_anchor").fetchone()
    assert system_id is not None and anchor_id is not None
    for target in (system_id[0], anchor_id[0]):
        expect_error(
            conn, "alice", "select public.edit_comment(%s, 'x')", (target,), "42501", "not yours"
        )
        expect_error(
            conn, "alice", "select public.delete_comment(%s)", (target,), "42501", "not yours"
        )
    assert (
        rpc(conn, "bob", "select public.delete_comment(%s)", (comment["id"],))["status"]
        == "deleted"
    )
    assert conn.execute(
        "select count(*) from public.comments where id = %s", (comment["id"],)
    ).fetchone() == (0,)


def test_get_comments_newest_first_with_keyset_pages(conn):
    ids = [rpc(conn, "bob", POST, (f"m{i}",))["id"] for i in range(7)]
    # Same created_at for several rows: the id breaks the tie.
    conn.execute(
        "update public.comments set created_at = '2026-01-01' where id = any(%s)", (ids[2:5],)
    )
    conn.execute(
        "update public.comments set created_at = '2025-12-31' where id = any(%s)", (ids[:2],)
    )
    seen: list[int] = []
    cursor = None
    while True:
        page = rpc(conn, "carol", "select public.get_comments('a1', 1, null, %s, 3)", (cursor,))
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]
    expect_error(
        conn,
        "carol",
        "select public.get_comments('a1', 1, null, 'x.y', 3)",
        (),
        "22023",
        "p_cursor",
    )
    expect_error(
        conn, "carol", "select public.get_comments('a1', 1, null, null, 0)", (), "22023", "p_limit"
    )


def test_get_comments_of_a_private_room_needs_membership(conn):
    room_id = new_room(conn, public=False)
    rpc(
        conn,
        "alice",
        "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1, p_message => 'secret', p_room_id => %s)",
        (room_id,),
    )
    expect_error(
        conn, "bob", "select public.get_comments('a1', 1, %s)", (room_id,), "P0002", "not found"
    )
    mine = rpc(conn, "alice", "select public.get_comments('a1', 1, %s)", (room_id,))
    assert [c["message"] for c in mine["items"]] == ["secret", "Alice joined the room"]
    # The room's comments are not part of the episode thread outside the room.
    thread = rpc(conn, "bob", "select public.get_comments('a1', 1)")
    assert [c["message"] for c in thread["items"]] == ["Discussion for Episode 1"]


def test_get_or_create_anchor_is_idempotent(conn):
    first = rpc(conn, "bob", "select public.get_or_create_anchor('a9', 3)")
    again = rpc(conn, "carol", "select public.get_or_create_anchor('a9', 3)")
    assert first["id"] == again["id"] and first["message"] == "Discussion for Episode 3"
    assert first["is_anchor"] is True and first["user_id"] is None
    expect_error(
        conn, "bob", "select public.get_or_create_anchor('a9', 0)", (), "22023", "p_episode_number"
    )
    expect_error(
        conn, "bob", "select public.get_or_create_anchor('', 1)", (), "22023", "p_anime_id"
    )


def test_sixteen_concurrent_callers_get_one_anchor(watchium_db_url, conn):
    callers = 16
    barrier = threading.Barrier(callers)
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call(index: int) -> None:
        try:
            with psycopg.connect(watchium_db_url, autocommit=True) as c:
                c.execute("select 1")
                barrier.wait()
                anchor = rpc(c, f"user{index}", "select public.get_or_create_anchor('race', 7)")
            with lock:
                ids.append(anchor["id"])
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == callers and len(set(ids)) == 1
    assert conn.execute(
        "select count(*) from public.comments where anime_id = 'race' and episode_number = 7"
    ).fetchone() == (1,)
