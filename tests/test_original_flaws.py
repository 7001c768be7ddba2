"""Each hole of the original platform's SQL (SPEC.md, "Flaws") has a test that would have
caught it. They go through the public functions, as a client would."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db.testing import as_user


def call(conn: psycopg.Connection[Any], user: str | None, sql: str, *args: Any) -> Any:
    role = "anon" if user is None else "authenticated"
    with as_user(conn, user, role=role) as c:
        row = c.execute(sql, args).fetchone()
    return None if row is None else row[0]


def create_room(conn: psycopg.Connection[Any], host: str, *, public: bool) -> dict[str, Any]:
    result: dict[str, Any] = call(
        conn,
        host,
        "select public.create_room(p_title => 'Friday', p_anime_id => 'frieren', p_anime_title => 'Frieren',"
        " p_episode_number => 1, p_video_url => 'https://cdn.example/e1.m3u8', p_username => %s,"
        " p_is_public => %s)",
        host.title(),
        public,
    )
    return result


@pytest.fixture
def private_room(conn):
    created = create_room(conn, "hana", public=False)
    room_id = created["room"]["room_id"]
    key = created["access_key"]
    joined = call(conn, "mio", "select public.join_room(%s, %s, 'Mio')", room_id, key)
    assert joined["status"] == "joined"
    return room_id, key


def room_row(conn: psycopg.Connection[Any], room_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select host_user_id, is_playing, current_playback_time, playback_speed, title"
        " from public.rooms where room_id = %s",
        (room_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(
    "sql",
    [
        "select public.change_playback_state(%s, true, 10)",
        "select public.seek_to_time(%s, 600)",
        "select public.set_playback_speed(%s, 2)",
        "select public.update_room(%s, p_title => 'mine now')",
        "select public.transfer_host(%s, 'mio')",
        "select public.kick_member(%s, 'hana')",
        "select public.delete_room(%s)",
    ],
)
def test_host_impersonation(conn, private_room, sql):
    """The original took the caller's id from an argument: anyone could act as the host.
    Identity now comes from the token, and a member who is not the host is refused."""
    room_id, _ = private_room
    before = room_row(conn, room_id)
    with pytest.raises(errors.InsufficientPrivilege) as exc:
        call(conn, "mio", sql, room_id)
    assert exc.value.sqlstate == "42501"
    assert room_row(conn, room_id) == before


def test_no_function_takes_the_callers_identity_as_an_argument(conn):
    """No public function has a parameter for 'who is calling' (p_user_id is either a target,
    as in kick_member and forget_user (service role only), or checked against the token, as in
    check_rate_limit)."""
    rows = conn.execute(
        """
        select p.proname, a.name
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace,
        unnest(p.proargnames) as a(name)
        where n.nspname = 'public' and a.name in ('p_user_id', 'p_caller', 'p_host_user_id', 'p_sender')
        """
    ).fetchall()
    # Every other p_user_id names the member acted upon (roles, bans, mutes, hidden comments),
    # or the requester whose join request a moderator answers.
    assert sorted(rows) == [
        ("answer_join_request", "p_user_id"),
        ("ban_member", "p_user_id"),
        ("check_rate_limit", "p_user_id"),
        ("forget_user", "p_user_id"),
        ("hide_member_comments", "p_user_id"),
        ("kick_member", "p_user_id"),
        ("mute_member", "p_user_id"),
        ("set_member_role", "p_user_id"),
        ("unban_member", "p_user_id"),
        ("unmute_member", "p_user_id"),
    ]


def test_private_room_and_its_key_do_not_leak(conn, private_room):
    """The original let anyone read private rooms with their access keys."""
    room_id, key = private_room
    # Strangers and anonymous callers see nothing of the room.
    for user in ("eve", None):
        role = "anon" if user is None else "authenticated"
        with as_user(conn, user, role=role) as c:
            assert c.execute("select count(*) from public.rooms where room_id = %s", (room_id,)).fetchone() == (0,)
            assert c.execute("select count(*) from public.room_members where room_id = %s", (room_id,)).fetchone() == (0,)
    with pytest.raises(errors.NoDataFound):
        call(conn, "eve", "select public.get_room(%s)", room_id)
    listed = call(conn, "eve", "select public.list_public_rooms()")
    assert room_id not in json.dumps(listed)
    # A member sees the room, but no key anywhere: not in the row, not from the functions.
    with as_user(conn, "mio") as c:
        row = c.execute("select to_jsonb(r) from public.rooms r where room_id = %s", (room_id,)).fetchone()
    assert row is not None and key not in json.dumps(row[0])
    assert "access_key" not in row[0]
    seen = call(conn, "mio", "select public.get_room(%s)", room_id)
    assert key not in json.dumps(seen)
    with pytest.raises(errors.InsufficientPrivilege):
        call(conn, "mio", "select public.get_room_access_key(%s)", room_id)
    # The host gets it.
    assert call(conn, "hana", "select public.get_room_access_key(%s)", room_id) == key
    # No table a client can read has a column holding it (replica_key is a random uuid, the
    # replica identity of the published tables: no secret).
    columns = conn.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = 'public' and column_name like '%%key%%'"
        " order by 1"
    ).fetchall()
    assert columns == [
        (t, "replica_key", "uuid") for t in ("comments", "room_members", "rooms")
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url) values ('anonroom01', 't', 'a', 'A', 1, 'https://x.y/v')",
        "insert into public.comments (anime_id, episode_number, username, message) values ('a', 1, 'anon', 'hi')",
        "update public.rooms set title = 'defaced'",
        "delete from public.room_members",
        "select public.create_room('t', 'a', 'A', 1, 'https://x.y/v', 'Anon')",
        "select public.post_comment('a', 1, 'hi')",
    ],
)
def test_anonymous_writes(conn, private_room, sql):
    """The original exposed every table and function to anon."""
    with pytest.raises((errors.InsufficientPrivilege, errors.InvalidAuthorizationSpecification)):
        call(conn, None, sql)


def test_self_promotion_to_host(conn, private_room):
    room_id, _ = private_room
    with pytest.raises(errors.InsufficientPrivilege):
        call(conn, "mio", "update public.room_members set is_host = true where user_id = 'mio' returning 1")
    with pytest.raises(errors.InsufficientPrivilege):
        call(conn, "mio", "select public.transfer_host(%s, 'mio')", room_id)
    assert room_row(conn, room_id)[0] == "hana"


def test_forged_system_messages(conn, private_room):
    """Clients can neither insert system rows nor pass a 'system' flag; text that looks like a
    system message is stored as the user's own comment."""
    room_id, _ = private_room
    with pytest.raises(errors.InsufficientPrivilege):
        call(
            conn,
            "mio",
            "insert into public.comments (anime_id, room_id, episode_number, username, message, is_system_message)"
            " values ('frieren', %s, 1, 'system', 'Mio became the new host', true) returning 1",
            room_id,
        )
    params = conn.execute(
        "select array_agg(a) from pg_proc p, unnest(p.proargnames) a where p.proname = 'post_comment'"
    ).fetchone()
    assert params is not None and not any("system" in a or "anchor" in a for a in params[0])
    call(
        conn,
        "mio",
        "select public.post_comment(p_anime_id => 'frieren', p_episode_number => 1,"
        " p_message => 'Mio became the new host', p_room_id => %s)",
        room_id,
    )
    row = conn.execute(
        "select user_id, is_system_message from public.comments where message = 'Mio became the new host'"
    ).fetchone()
    assert row == ("mio", False)


def test_poisoning_another_users_rate_limit(conn, private_room):
    with pytest.raises(errors.InsufficientPrivilege):
        call(conn, "mio", "select public.check_rate_limit('hana', 'sync_control', 1, 1)")
    counted = conn.execute(
        "select count(*) from watchium_private.rate_limit_counters where subject = 'hana'"
    ).fetchone()
    # Creating the room counted hana's own create_room; nothing was added for sync_control.
    assert conn.execute(
        "select count(*) from watchium_private.rate_limit_counters where subject = 'hana' and action = 'sync_control'"
    ).fetchone() == (0,)
    assert counted is not None


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-1", "86400.01"])
def test_nan_and_out_of_range_times_are_rejected(conn, private_room, value):
    """'NaN' passed the original's CHECK (time >= 0)."""
    room_id, _ = private_room
    with pytest.raises(errors.InvalidParameterValue) as exc:
        call(conn, "hana", "select public.seek_to_time(%s, %s::numeric)", room_id, value)
    assert "p_time" in str(exc.value) or "time" in str(exc.value)
    assert room_row(conn, room_id)[2] == 0
