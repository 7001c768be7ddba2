"""forget_user: a deleted account leaves nothing behind but expiring history.

Memberships go through the leave path (host handed on), comments are deleted or become
authorless tombstones when other people replied, presence, rate limit counters and realtime
metrics go. Only service_role (or the owner) may call it.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db.client import Client
from watchium_db.errors import Forbidden
from watchium_db.testing import as_user, make_room


def call(conn: psycopg.Connection[Any], user: str | None, sql: str, args: Any = (), *,
         role: str = "authenticated") -> Any:  # fmt: skip
    with as_user(conn, user, role=role) as c:
        row = c.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def post(conn: psycopg.Connection[Any], user: str, message: str, *, room_id: str | None = None,
         parent_id: int | None = None) -> int:  # fmt: skip
    comment = call(
        conn, user,
        "select public.post_comment('a1', 1, %s, p_username => %s, p_room_id => %s,"
        " p_parent_id => %s)",
        (message, user.title(), room_id, parent_id),
    )  # fmt: skip
    return int(comment["id"])


def forget(conn: psycopg.Connection[Any], user_id: str) -> dict[str, Any]:
    result: dict[str, Any] = call(
        conn, None, "select public.forget_user(%s)", (user_id,), role="service_role"
    )
    return result


def traces(conn: psycopg.Connection[Any], user_id: str) -> dict[str, int]:
    row = conn.execute(
        """
        select (select count(*) from public.room_members where user_id = %(u)s),
               (select count(*) from watchium_private.member_presence where user_id = %(u)s),
               (select count(*) from public.comments where user_id = %(u)s),
               (select count(*) from public.rooms where host_user_id = %(u)s),
               (select count(*) from watchium_private.rate_limit_counters where subject = %(u)s),
               (select count(*) from watchium_private.realtime_metrics where user_id = %(u)s)
        """,
        {"u": user_id},
    ).fetchone()
    assert row is not None
    names = ("members", "presence", "comments", "hosted", "counters", "metrics")
    return dict(zip(names, row, strict=True))


def test_forget_user_removes_memberships_comments_presence_and_counters(conn):
    hosted = make_room(conn, host="gone", members=["m1", "m2"], private=True)
    joined = make_room(conn, host="other", members=["gone"])
    alone = make_room(conn, host="gone", anime_id="a2")
    call(conn, "gone", "select public.record_heartbeat(%s, 1, true)", (hosted.room_id,))
    call(conn, "gone", "select public.record_realtime_metrics(%s, 1, 10, 20, 0)",
         (hosted.room_id,))  # fmt: skip

    standalone = post(conn, "gone", "just me", room_id=hosted.room_id)
    replied = post(conn, "gone", "answer me", room_id=hosted.room_id)
    reply_by_m1 = post(conn, "m1", "an answer", room_id=hosted.room_id, parent_id=replied)
    self_thread = post(conn, "gone", "talking to myself")
    self_reply = post(conn, "gone", "indeed", parent_id=self_thread)
    m1_root = post(conn, "m1", "a question")
    reply_to_m1 = post(conn, "gone", "my reply", parent_id=m1_root)
    m1_tombstone = post(conn, "m1", "soon a tombstone")
    only_reply = post(conn, "gone", "the only reply", parent_id=m1_tombstone)
    call(conn, "m1", "select public.delete_comment(%s)", (m1_tombstone,))

    before = traces(conn, "gone")
    assert all(before[k] > 0 for k in ("members", "presence", "comments", "hosted", "counters",
                                       "metrics")), before  # fmt: skip

    result = forget(conn, "gone")
    assert result["rooms_left"] == 3
    assert result["comments_tombstoned"] == 1
    # 5 of the user's comments, m1's tombstone left bare, 3 "joined the room" about the user
    assert result["comments_deleted"] == 9
    assert traces(conn, "gone") == dict.fromkeys(before, 0)

    # Host handed to the longest-present member; the other rooms keep theirs or empty out.
    hosts = dict(conn.execute("select room_id, host_user_id from public.rooms").fetchall())
    assert hosts == {hosted.room_id: "m1", joined.room_id: "other", alone.room_id: None}

    # The replied comment is an authorless tombstone; other people's comments are untouched.
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "select id, user_id, username, message, deleted_at is not null from public.comments"
            " where not is_system_message and not is_anchor"
        ).fetchall()
    }
    assert rows == {
        replied: (None, "deleted", "", True),
        reply_by_m1: ("m1", "M1", "an answer", False),
        m1_root: ("m1", "M1", "a question", False),
    }
    for gone_id in (standalone, self_thread, self_reply, reply_to_m1, only_reply, m1_tombstone):
        assert gone_id not in rows

    # Idempotent.
    again = forget(conn, "gone")
    assert again["rooms_left"] == again["comments_deleted"] == again["comments_tombstoned"] == 0


def test_forget_user_announces_in_the_room(conn):
    room = make_room(conn, host="gone", members=["m1"])
    comment = post(conn, "gone", "bye", room_id=room.room_id)
    since = conn.execute("select coalesce(max(event_id), 0) from watchium_private.room_events"
                         ).fetchone()[0]  # fmt: skip
    forget(conn, "gone")
    events = conn.execute(
        "select event, payload from watchium_private.room_events"
        " where room_id = %s and event_id > %s order by event_id",
        (room.room_id, since),
    ).fetchall()
    names = [e for e, _ in events]
    assert ("member_left", {"user_id": "gone", "reason": "account_deleted"}) in [
        (e, {k: p[k] for k in ("user_id", "reason")}) for e, p in events if e == "member_left"
    ]
    assert "host_changed" in names
    assert ("comment_deleted", comment) in [(e, p.get("id")) for e, p in events]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_forget_anyone(conn, role):
    make_room(conn, host="victim")
    user = None if role == "anon" else "attacker"
    with pytest.raises(errors.InsufficientPrivilege):
        call(conn, user, "select public.forget_user('victim')", role=role)
    assert traces(conn, "victim")["members"] == 1
    assert not conn.execute(
        "select has_function_privilege(%s, 'public.forget_user(text)', 'execute')", (role,)
    ).fetchone()[0]


def test_forget_user_refuses_untrusted_callers_even_with_execute(conn):
    """Defence in depth: a grant added by mistake still does not let a client forget anyone."""
    make_room(conn, host="victim")
    conn.execute("grant execute on function public.forget_user(text) to authenticated")
    # The entry point alone: its security definer body stays out of reach.
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        call(conn, "attacker", "select public.forget_user('victim')")
    # The body too: the body's own check refuses.
    conn.execute("grant execute on function watchium_rpc.forget_user(text) to authenticated")
    with pytest.raises(errors.InsufficientPrivilege, match="service_role only"):
        call(conn, "attacker", "select public.forget_user('victim')")
    assert traces(conn, "victim")["members"] == 1


@pytest.mark.parametrize("bad", [None, "", "x" * 101])
def test_forget_user_checks_its_argument(conn, bad):
    with pytest.raises(errors.InvalidParameterValue, match="p_user_id"):
        forget(conn, bad)


def test_client_forget_user(conn):
    room = make_room(conn, host="gone", members=["m1"])
    client = Client(conn)
    forgotten = client.service().forget_user("gone")
    assert (forgotten.user_id, forgotten.rooms_left) == ("gone", 1)
    assert client.service().get_room(room.room_id).room.host_user_id == "m1"
    with pytest.raises(Forbidden):
        client.as_user("m1").forget_user("m1")
