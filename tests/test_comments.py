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
    assert [c["message"] for c in mine["items"]] == ["secret", "joined the room"]
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


REPLY = (
    "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1, p_message => %s,"
    " p_username => 'Replier', p_parent_id => %s)"
)
DELETE = "select public.delete_comment(%s)"


def _comment(conn: Conn, comment_id: int) -> tuple[Any, ...] | None:
    return conn.execute(
        "select message, deleted_at is not null, avatar_url, video_timestamp"
        " from public.comments where id = %s",
        (comment_id,),
    ).fetchone()


def test_deleting_a_comment_never_deletes_other_peoples_replies(conn):
    parent = rpc(
        conn,
        "bob",
        "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1, p_message => 'p',"
        " p_username => 'Bob', p_avatar_url => 'https://example.com/a.png',"
        " p_video_timestamp => 12.5)",
    )
    reply = rpc(conn, "carol", REPLY, ("r1", parent["id"]))
    nested = rpc(conn, "dave", REPLY, ("r2", reply["id"]))

    # Bob's comment has a reply: it stays as a tombstone, the replies stay as they were.
    deleted = rpc(conn, "bob", DELETE, (parent["id"],))
    assert deleted == {"status": "deleted", "id": parent["id"], "tombstone": True}
    assert _comment(conn, parent["id"]) == ("", True, None, None)
    assert _comment(conn, reply["id"]) == ("r1", False, None, None)
    assert _comment(conn, nested["id"]) == ("r2", False, None, None)
    page = rpc(conn, "carol", "select public.get_comments('a1', 1)")
    tombstone = next(c for c in page["items"] if c["id"] == parent["id"])
    assert tombstone["message"] == "" and tombstone["deleted_at"] is not None
    # A tombstone is no longer its author's to edit or delete; others may still reply to it.
    expect_error(
        conn,
        "bob",
        "select public.edit_comment(%s, 'back')",
        (parent["id"],),
        "P0002",
        "was deleted",
    )
    expect_error(conn, "bob", DELETE, (parent["id"],), "P0002", "was deleted")
    late = rpc(conn, "erin", REPLY, ("r3", parent["id"]))

    # Carol's reply has Dave's reply under it: a tombstone too.
    assert rpc(conn, "carol", DELETE, (reply["id"],))["tombstone"] is True
    # Dave's reply has none: deleted outright, and Carol's tombstone, now without replies, with it;
    # Bob's tombstone still holds Erin's reply.
    assert rpc(conn, "dave", DELETE, (nested["id"],))["tombstone"] is False
    assert _comment(conn, nested["id"]) is None
    assert _comment(conn, reply["id"]) is None
    assert _comment(conn, parent["id"]) == ("", True, None, None)
    # The last reply goes: so does the tombstone above it.
    assert rpc(conn, "erin", DELETE, (late["id"],))["tombstone"] is False
    assert _comment(conn, parent["id"]) is None


def test_a_comment_with_replies_cannot_be_deleted_outright(conn):
    parent = rpc(conn, "bob", POST, ("p",))
    rpc(conn, "carol", REPLY, ("r", parent["id"]))
    # Even the owner's DELETE refuses (on delete restrict): replies never go with a parent.
    with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
        conn.execute("delete from public.comments where id = %s", (parent["id"],))
    # A tombstone has an empty message, no avatar and no video time; nothing else is empty.
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute("update public.comments set deleted_at = now() where id = %s", (parent["id"],))
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute("update public.comments set message = '' where id = %s", (parent["id"],))


def test_room_tombstones_and_deletions_are_announced(conn):
    room_id = new_room(conn)
    in_room = (
        "select public.post_comment(p_anime_id => 'a1', p_episode_number => 1, p_message => %s,"
        " p_room_id => %s, p_parent_id => %s)"
    )
    parent = rpc(conn, "alice", in_room, ("p", room_id, None))
    reply = rpc(conn, "alice", in_room, ("r", room_id, parent["id"]))
    rpc(conn, "alice", DELETE, (parent["id"],))
    rpc(conn, "alice", DELETE, (reply["id"],))
    events = conn.execute(
        "select payload from watchium_private.room_events"
        " where room_id = %s and event = 'comment_deleted' order by event_id",
        (room_id,),
    ).fetchall()
    assert [e[0] for e in events] == [
        {"id": parent["id"], "tombstone": True},
        {"id": reply["id"], "tombstone": False},
        {"id": parent["id"], "tombstone": False},
    ]
    # A room reply to an episode comment (no room): the episode comment's removal is not
    # announced to the room.
    episode = rpc(conn, "bob", POST, ("episode",))
    room_reply = rpc(conn, "alice", in_room, ("r", room_id, episode["id"]))
    rpc(conn, "bob", DELETE, (episode["id"],))
    rpc(conn, "alice", DELETE, (room_reply["id"],))
    assert _comment(conn, episode["id"]) is None
    events = conn.execute(
        "select payload from watchium_private.room_events"
        " where room_id = %s and event = 'comment_deleted' order by event_id",
        (room_id,),
    ).fetchall()
    assert [e[0] for e in events][3:] == [{"id": room_reply["id"], "tombstone": False}]


def test_reply_racing_a_delete_is_kept_or_cleanly_refused(conn, watchium_db_url):
    # A reply still in flight when its parent's author deletes it: the delete waits for it and
    # leaves a tombstone, and the reply is kept.
    parent = rpc(conn, "bob", POST, ("p",))
    with (
        psycopg.connect(watchium_db_url, autocommit=True) as replier,
        psycopg.connect(watchium_db_url, autocommit=True) as author,
    ):
        with as_user(replier, "carol") as c:
            reply = c.execute(REPLY, ("r", parent["id"])).fetchone()
            assert reply is not None
            result: list[Any] = []

            def delete() -> None:
                with as_user(author, "bob") as a:
                    row = a.execute(DELETE, (parent["id"],)).fetchone()
                    assert row is not None
                    result.append(row[0])

            deleter = threading.Thread(target=delete)
            deleter.start()
            deleter.join(0.5)
            assert deleter.is_alive()  # waiting for the reply's transaction
        deleter.join(10)
        assert result == [{"status": "deleted", "id": parent["id"], "tombstone": True}]
        assert _comment(conn, reply[0]["id"]) == ("r", False, None, None)

        # A delete that locked its comment first: the reply waits, then gets a clear P0002.
        lone = rpc(conn, "bob", POST, ("lone",))
        with as_user(author, "bob") as a:
            a.execute(DELETE, (lone["id"],))
            errors: list[psycopg.Error] = []

            def reply_late() -> None:
                try:
                    rpc(replier, "carol", REPLY, ("too late", lone["id"]))
                except psycopg.Error as exc:
                    errors.append(exc)

            late = threading.Thread(target=reply_late)
            late.start()
            late.join(0.5)
            assert late.is_alive()
        late.join(10)
        assert [e.sqlstate for e in errors] == ["P0002"]
        assert "p_parent_id" in str(errors[0])
