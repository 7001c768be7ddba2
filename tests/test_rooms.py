"""Rooms: create, join (keys and their brute-force limit), leave, kick, update, delete, look-ups."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user

Conn = psycopg.Connection[Any]

CREATE = (
    "select public.create_room(p_title => %s, p_anime_id => 'a1', p_anime_title => 'Anime',"
    " p_episode_number => 1, p_video_url => 'https://example.com/v.m3u8', p_username => %s,"
    " p_is_public => %s)"
)


def rpc(conn: Conn, user: str | None, sql: str, params: Any = ()) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def create_room(
    conn: Conn, user: str = "alice", *, public: bool = True, title: str = "Party"
) -> dict[str, Any]:
    result: dict[str, Any] = rpc(conn, user, CREATE, (title, user.capitalize(), public))
    return result


def join(conn: Conn, user: str, room_id: str, key: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = rpc(
        conn, user, "select public.join_room(%s, %s, %s)", (room_id, key, user.capitalize())
    )
    return result


def expect_error(
    conn: Conn, user: str | None, sql: str, params: Any, sqlstate: str, words: str
) -> None:
    with pytest.raises(psycopg.Error) as exc:
        rpc(conn, user, sql, params)
    assert exc.value.sqlstate == sqlstate, exc.value
    assert words in str(exc.value), exc.value


def members(conn: Conn, room_id: str) -> list[tuple[str, bool]]:
    return conn.execute(
        "select user_id, is_host from public.room_members where room_id = %s order by joined_at",
        (room_id,),
    ).fetchall()


# ---------------------------------------------------------------------------------------------
# create_room
# ---------------------------------------------------------------------------------------------
def test_create_public_room_makes_creator_host_and_anchor(conn):
    result = create_room(conn)
    room = result["room"]
    assert len(room["room_id"]) == 10 and room["room_id"].isalnum() and room["room_id"].islower()
    assert room["host_user_id"] == "alice" and room["host_username"] == "Alice"
    assert result["access_key"] is None
    assert result["membership"]["is_host"] is True
    assert members(conn, room["room_id"]) == [("alice", True)]
    assert conn.execute(
        "select count(*) from public.comments where anime_id = 'a1' and episode_number = 1 and is_anchor"
    ).fetchone() == (1,)
    assert conn.execute(
        "select count(*) from watchium_private.room_secrets where room_id = %s", (room["room_id"],)
    ).fetchone() == (0,)


def test_create_private_room_returns_key_to_host_only(conn):
    result = create_room(conn, public=False)
    room_id, key = result["room"]["room_id"], result["access_key"]
    assert len(key) == 6 and key.isdigit()
    assert "access_key" not in result["room"]
    assert rpc(conn, "alice", "select public.get_room_access_key(%s)", (room_id,)) == key
    assert rpc(conn, "alice", "select public.get_room(%s)", (room_id,))["access_key"] == key
    join(conn, "bob", room_id, key)
    bob_view = rpc(conn, "bob", "select public.get_room(%s)", (room_id,))
    assert bob_view["access_key"] is None and bob_view["is_member"] and not bob_view["is_host"]
    expect_error(conn, "bob", "select public.get_room_access_key(%s)", (room_id,), "42501", "host")
    # Clients cannot read the secrets table at all.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        rpc(conn, "alice", "select access_key from watchium_private.room_secrets")


@pytest.mark.parametrize(
    ("argument", "sql_value"),
    [
        ("p_title", "''"),
        ("p_title", "'   '"),
        ("p_title", "repeat('x', 201)"),
        ("p_title", "E'bad\\x07title'"),
        ("p_anime_id", "null"),
        ("p_video_url", "'ftp://example.com/v'"),
        ("p_video_url", "'https://exa mple.com'"),
        ("p_username", "repeat('u', 51)"),
        ("p_username", "E'line\\nbreak'"),
        ("p_episode_number", "0"),
        ("p_episode_number", "100001"),
        ("p_avatar_url", "'javascript:alert(1)'"),
    ],
)
def test_create_room_rejects_bad_input(conn, argument, sql_value):
    args = {
        "p_title": "'Party'",
        "p_anime_id": "'a1'",
        "p_anime_title": "'Anime'",
        "p_episode_number": "1",
        "p_video_url": "'https://example.com/v'",
        "p_username": "'Alice'",
        "p_avatar_url": "null",
    }
    args[argument] = sql_value
    sql = "select public.create_room(" + ", ".join(f"{k} => {v}" for k, v in args.items()) + ")"
    expect_error(conn, "alice", sql, (), "22023", argument)
    assert conn.execute("select count(*) from public.rooms").fetchone() == (0,)


def test_anonymous_callers_cannot_create_or_join(conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(conn, None, role="anon") as c:
        c.execute(CREATE, ("x", "X", True))
    room_id = create_room(conn)["room"]["room_id"]
    # A signed-in role without a sub claim is anonymous: 28000.
    with pytest.raises(psycopg.Error) as exc, as_user(conn, None) as c:
        c.execute("select public.join_room(%s, null, 'Nobody')", (room_id,))
    assert exc.value.sqlstate == "28000"


def test_room_id_retries_on_collision(conn):
    """A generated id that is taken is drawn again (insert ... on conflict, never check-then-insert)."""
    taken = create_room(conn)["room"]["room_id"]
    conn.execute("create sequence public.test_ids")
    conn.execute(
        "create or replace function watchium_private.generate_room_id() returns text language sql as"
        f" $$ select case when nextval('public.test_ids') < 3 then '{taken}' else 'freshroom1' end $$"
    )
    assert create_room(conn, "bob")["room"]["room_id"] == "freshroom1"
    assert conn.execute("select last_value from public.test_ids").fetchone() == (3,)


def test_room_ids_and_access_keys_are_well_formed_and_spread(conn):
    ids = [
        r[0]
        for r in conn.execute(
            "select watchium_private.generate_room_id() from generate_series(1, 2000)"
        ).fetchall()
    ]
    assert len(set(ids)) == 2000
    assert all(len(i) == 10 and set(i) <= set("abcdefghijklmnopqrstuvwxyz0123456789") for i in ids)
    chars = Counter("".join(ids))  # 20,000 characters, ~556 per symbol
    assert len(chars) == 36 and min(chars.values()) > 400 and max(chars.values()) < 720
    keys = [
        r[0]
        for r in conn.execute(
            "select watchium_private.generate_access_key() from generate_series(1, 3000)"
        ).fetchall()
    ]
    assert all(len(k) == 6 and k.isdigit() for k in keys)
    first = Counter(k[0] for k in keys)  # leading zeros must occur (~300 of 3000)
    assert len(first) == 10 and min(first.values()) > 200


# ---------------------------------------------------------------------------------------------
# join_room
# ---------------------------------------------------------------------------------------------
def test_join_public_room_is_idempotent_and_records_join(conn):
    room_id = create_room(conn)["room"]["room_id"]
    first = join(conn, "bob", room_id)
    assert first["status"] == "joined" and first["membership"]["is_host"] is False
    again = join(conn, "bob", room_id)
    assert again["status"] == "already_member"
    assert again["membership"]["joined_at"] == first["membership"]["joined_at"]
    assert members(conn, room_id) == [("alice", True), ("bob", False)]
    assert conn.execute(
        "select count(*) from public.sync_states where room_id = %s and user_id = 'bob' and sync_event_type = 'join'",
        (room_id,),
    ).fetchone() == (1,)
    assert conn.execute(
        "select user_id, message from public.comments where room_id = %s and is_system_message order by id",
        (room_id,),
    ).fetchall() == [("alice", "joined the room"), ("bob", "joined the room")]
    events = conn.execute(
        "select event, payload->>'user_id' from watchium_private.room_events where room_id = %s order by event_id",
        (room_id,),
    ).fetchall()
    assert events == [("member_joined", "alice"), ("member_joined", "bob")]


def test_join_records_expected_position_while_playing(conn):
    room_id = create_room(conn)["room"]["room_id"]
    conn.execute(
        "update public.rooms set current_playback_time = 100, is_playing = true, playback_speed = 2,"
        " playback_updated_at = now() - interval '10 seconds' where room_id = %s",
        (room_id,),
    )
    join(conn, "bob", room_id)
    host_time = conn.execute(
        "select host_time from public.sync_states where user_id = 'bob' and sync_event_type = 'join'"
    ).fetchone()
    assert host_time is not None and 119 < host_time[0] < 122


def test_join_unknown_or_malformed_room(conn):
    # A missing room answers as a private room does: its key is required.
    expect_error(
        conn, "bob", "select public.join_room('zzzzzzzzzz', null, 'Bob')", (), "22023",
        "p_access_key",
    )  # fmt: skip
    expect_error(
        conn, "bob", "select public.join_room('NOPE', null, 'Bob')", (), "22023", "p_room_id"
    )
    room_id = create_room(conn)["room"]["room_id"]
    expect_error(
        conn, "bob", "select public.join_room(%s, null, '')", (room_id,), "22023", "p_username"
    )
    expect_error(
        conn, "bob", "select public.join_room(%s, null, null)", (room_id,), "22023", "p_username"
    )


def test_private_room_needs_the_right_key(conn):
    created = create_room(conn, public=False)
    room_id, key = created["room"]["room_id"], created["access_key"]
    wrong = f"{(int(key) + 1) % 1000000:06d}"
    expect_error(
        conn, "bob", "select public.join_room(%s, null, 'Bob')", (room_id,), "22023", "p_access_key"
    )
    expect_error(
        conn,
        "bob",
        "select public.join_room(%s, '12345', 'Bob')",
        (room_id,),
        "22023",
        "p_access_key",
    )
    result = join(conn, "bob", room_id, wrong)
    assert result == {"status": "invalid_access_key", "room_id": room_id, "attempts_left": 4}
    assert members(conn, room_id) == [("alice", True)]
    assert join(conn, "bob", room_id, key)["status"] == "joined"
    # A right key is not counted: bob still has 4 attempts left for other rooms.
    other = create_room(conn, "carol", public=False)["room"]["room_id"]
    assert join(conn, "bob", other, wrong)["attempts_left"] == 3


def test_wrong_keys_are_limited_per_user(conn):
    """5 wrong keys per user per hour: the 6th attempt is refused before the key is compared."""
    created = create_room(conn, public=False)
    room_id, key = created["room"]["room_id"], created["access_key"]
    wrong = [f"{(int(key) + i) % 1000000:06d}" for i in range(1, 6)]
    lefts = [join(conn, "mallory", room_id, k)["attempts_left"] for k in wrong]
    assert lefts == [4, 3, 2, 1, 0]
    # Even the right key is refused now: guessing cannot continue.
    expect_error(
        conn,
        "mallory",
        "select public.join_room(%s, %s, 'M')",
        (room_id, key),
        "WD429",
        "access keys",
    )
    assert members(conn, room_id) == [("alice", True)]
    count = conn.execute(
        "select request_count from watchium_private.rate_limit_counters"
        " where subject = 'mallory' and action = 'join_room_key_user'"
    ).fetchone()
    assert count == (5,)


def _rotate(conn: Conn, host: str, room_id: str) -> str:
    result = rpc(
        conn, host, "select public.update_room(%s, p_rotate_access_key => true)", (room_id,)
    )
    key: str = result["access_key"]
    return key


def _wrong_attempts(conn: Conn, room_id: str) -> int:
    row = conn.execute(
        "select wrong_attempts from watchium_private.room_secrets where room_id = %s", (room_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_wrong_keys_are_limited_per_key_across_users(conn):
    """A key absorbs access_key_guess_budget wrong guesses (50) from all accounts together;
    after that it is not compared, even the right key is refused, until the host rotates."""
    budget = conn.execute(
        "select (select value::integer from watchium_private.settings where key = 'access_key_guess_budget'),"
        " (select value::integer from watchium_private.settings where key = 'access_key_guess_budget_per_hour')"
    ).fetchone()
    assert budget == (50, 20)
    created = create_room(conn, public=False)
    room_id, key = created["room"]["room_id"], created["access_key"]
    wrong = f"{(int(key) + 7) % 1000000:06d}"
    lefts = []
    for attacker in range(10):  # 10 accounts x 5 guesses = 50
        for _ in range(5):
            lefts.append(join(conn, f"sybil{attacker}", room_id, wrong)["attempts_left"])
    assert lefts[-1] == 0 and _wrong_attempts(conn, room_id) == 50
    for user, attempt in (("fresh", wrong), ("friend", key)):
        expect_error(
            conn,
            user,
            "select public.join_room(%s, %s, 'F')",
            (room_id, attempt),
            "WD429",
            "this room's key",
        )
    assert _wrong_attempts(conn, room_id) == 50
    assert members(conn, room_id) == [("alice", True)]


def test_rotation_lets_the_right_key_in_at_once_and_old_guesses_are_worthless(conn):
    """Many throw-away accounts spend the key's budget; the host rotates; a user with the new
    key joins at once, while the old key and further guesses at it get nothing."""
    created = create_room(conn, public=False)
    room_id, old_key = created["room"]["room_id"], created["access_key"]
    wrong = f"{(int(old_key) + 1) % 1000000:06d}"
    for attacker in range(12):
        for _ in range(5):
            try:
                join(conn, f"sybil{attacker}", room_id, wrong)
            except psycopg.Error as exc:
                assert exc.sqlstate == "WD429"
    assert _wrong_attempts(conn, room_id) == 50
    new_key = _rotate(conn, "alice", room_id)
    assert _wrong_attempts(conn, room_id) == 0
    # While throw-away accounts keep guessing, the right key works (the budget is not spent).
    for attacker in range(12, 16):
        for _ in range(5):
            guess = old_key if old_key != new_key else wrong
            assert join(conn, f"sybil{attacker}", room_id, guess)["status"] == "invalid_access_key"
    assert join(conn, "friend", room_id, new_key)["status"] == "joined"
    # The old key is just another wrong key now.
    if old_key != new_key:
        assert join(conn, "late", room_id, old_key)["status"] == "invalid_access_key"
    assert [m for m, _ in members(conn, room_id)] == ["alice", "friend"]


def test_a_keys_budget_grows_with_its_age(conn):
    created = create_room(conn, public=False)
    room_id, key = created["room"]["room_id"], created["access_key"]
    wrong = f"{(int(key) + 5) % 1000000:06d}"
    conn.execute(
        "update watchium_private.room_secrets set wrong_attempts = 50 where room_id = %s",
        (room_id,),
    )
    expect_error(
        conn, "g1", "select public.join_room(%s, %s, 'G')", (room_id, wrong), "WD429", "key"
    )
    conn.execute(
        "update watchium_private.room_secrets set created_at = created_at - interval '2 hours 5 minutes'"
        " where room_id = %s",
        (room_id,),
    )
    # 50 + 2 x 20 = 90 for a key of 2 hours and 5 minutes: compared again, and counted.
    assert join(conn, "g1", room_id, wrong)["status"] == "invalid_access_key"
    assert _wrong_attempts(conn, room_id) == 51
    assert join(conn, "friend", room_id, key)["status"] == "joined"


# ---------------------------------------------------------------------------------------------
# leave, kick, transfer, update, delete: authority
# ---------------------------------------------------------------------------------------------
def test_leave_is_idempotent_and_hands_host_on(conn):
    room_id = create_room(conn)["room"]["room_id"]
    join(conn, "bob", room_id)
    join(conn, "carol", room_id)
    result = rpc(conn, "alice", "select public.leave_room(%s)", (room_id,))
    assert result["status"] == "left" and result["host_user_id"] == "bob"
    assert rpc(conn, "alice", "select public.leave_room(%s)", (room_id,))["status"] == "not_member"
    assert members(conn, room_id) == [("bob", True), ("carol", False)]
    assert conn.execute(
        "select count(*) from public.sync_states where user_id = 'alice' and sync_event_type = 'leave'"
    ).fetchone() == (1,)


def test_non_hosts_cannot_kick_transfer_update_or_delete(conn):
    room_id = create_room(conn)["room"]["room_id"]
    join(conn, "bob", room_id)
    # kick_member goes by the room's kick permission (default: co-host and up).
    kick = "select public.kick_member(%s, 'alice')"
    expect_error(conn, "bob", kick, (room_id,), "42501", "needs the co_host role")
    expect_error(conn, "stranger", kick, (room_id,), "42501", "needs the co_host role")
    for sql, params in [
        ("select public.transfer_host(%s, 'bob')", (room_id,)),
        ("select public.update_room(%s, p_title => 'Mine')", (room_id,)),
        ("select public.delete_room(%s)", (room_id,)),
    ]:
        expect_error(conn, "bob", sql, params, "42501", "only the host")
        expect_error(conn, "stranger", sql, params, "42501", "only the host")
    assert members(conn, room_id) == [("alice", True), ("bob", False)]
    assert conn.execute("select title from public.rooms").fetchone() == ("Party",)


def test_kick_member(conn):
    room_id = create_room(conn)["room"]["room_id"]
    join(conn, "bob", room_id)
    assert (
        rpc(conn, "alice", "select public.kick_member(%s, 'bob')", (room_id,))["status"] == "kicked"
    )
    assert members(conn, room_id) == [("alice", True)]
    expect_error(
        conn, "alice", "select public.kick_member(%s, 'bob')", (room_id,), "P0002", "not a member"
    )
    expect_error(
        conn, "alice", "select public.kick_member(%s, 'alice')", (room_id,), "22023", "p_user_id"
    )
    expect_error(
        conn, "alice", "select public.kick_member(%s, '')", (room_id,), "22023", "p_user_id"
    )
    events = conn.execute(
        "select payload from watchium_private.room_events where event = 'member_kicked'"
    ).fetchall()
    assert events == [({"user_id": "bob", "kicked_by": "alice"},)]


def test_transfer_host(conn):
    room_id = create_room(conn)["room"]["room_id"]
    join(conn, "bob", room_id)
    assert (
        rpc(conn, "alice", "select public.transfer_host(%s, 'bob')", (room_id,))["host_user_id"]
        == "bob"
    )
    assert members(conn, room_id) == [("alice", False), ("bob", True)]
    assert conn.execute("select host_user_id, host_username from public.rooms").fetchone() == (
        "bob",
        "Bob",
    )
    assert conn.execute(
        "select user_id || ' ' || message from public.comments where is_system_message order by id desc limit 1"
    ).fetchone() == ("bob became the new host",)
    expect_error(
        conn, "bob", "select public.transfer_host(%s, 'nobody')", (room_id,), "P0002", "p_new_host"
    )
    expect_error(
        conn,
        "alice",
        "select public.transfer_host(%s, 'alice')",
        (room_id,),
        "42501",
        "only the host",
    )


def test_update_room_episode_creates_anchor_and_resets_playback(conn):
    room_id = create_room(conn)["room"]["room_id"]
    conn.execute("update public.rooms set current_playback_time = 300, is_playing = true")
    result = rpc(
        conn,
        "alice",
        "select public.update_room(%s, p_title => ' New title ', p_episode_number => 2)",
        (room_id,),
    )
    room = result["room"]
    assert room["title"] == "New title" and room["episode_number"] == 2
    assert float(room["current_playback_time"]) == 0 and room["is_playing"] is False
    assert conn.execute(
        "select message from public.comments where is_anchor and episode_number = 2"
    ).fetchone() == ("Discussion for Episode 2",)
    payload = conn.execute(
        "select payload from watchium_private.room_events where event = 'room_updated'"
    ).fetchone()
    assert payload == ({"title": "New title", "episode_number": 2},)


def test_update_room_privacy_draws_new_keys_and_never_emits_them(conn):
    room_id = create_room(conn)["room"]["room_id"]
    made_private = rpc(
        conn, "alice", "select public.update_room(%s, p_is_public => false)", (room_id,)
    )
    key1 = made_private["access_key"]
    assert len(key1) == 6 and made_private["room"]["is_public"] is False
    rotated = rpc(
        conn, "alice", "select public.update_room(%s, p_rotate_access_key => true)", (room_id,)
    )
    key2 = rotated["access_key"]
    assert conn.execute("select access_key from watchium_private.room_secrets").fetchone() == (
        key2,
    )
    events = conn.execute("select payload::text from watchium_private.room_events").fetchall()
    assert not any(key1 in e[0] or key2 in e[0] for e in events)
    made_public = rpc(
        conn, "alice", "select public.update_room(%s, p_is_public => true)", (room_id,)
    )
    assert made_public["access_key"] is None
    assert conn.execute("select count(*) from watchium_private.room_secrets").fetchone() == (0,)


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ("", "nothing to update"),
        (", p_title => ''", "p_title"),
        (", p_episode_number => -1", "p_episode_number"),
        (", p_video_url => 'nope'", "p_video_url"),
        (", p_rotate_access_key => true", "p_rotate_access_key"),
    ],
)
def test_update_room_rejects_bad_input(conn, args, argument):
    room_id = create_room(conn)["room"]["room_id"]
    expect_error(
        conn, "alice", f"select public.update_room(%s{args})", (room_id,), "22023", argument
    )


def test_delete_room_deletes_its_comments(conn):
    room_id = create_room(conn)["room"]["room_id"]
    join(conn, "bob", room_id)
    assert rpc(conn, "alice", "select public.delete_room(%s)", (room_id,))["status"] == "deleted"
    assert conn.execute("select count(*) from public.rooms").fetchone() == (0,)
    assert conn.execute("select count(*) from public.room_members").fetchone() == (0,)
    # Only the episode's anchor is left: the room's system comments went with it.
    assert conn.execute(
        "select count(*), count(*) filter (where is_anchor) from public.comments"
    ).fetchone() == (1, 1)
    assert conn.execute(
        "select count(*) from watchium_private.room_events where event = 'room_deleted' and room_id = %s",
        (room_id,),
    ).fetchone() == (1,)
    expect_error(conn, "alice", "select public.delete_room(%s)", (room_id,), "P0002", "not found")


def _visible_chat(conn: Conn, user: str | None) -> list[str]:
    """The private chat lines a caller can read, directly and through get_comments."""
    role = "anon" if user is None else "authenticated"
    with as_user(conn, user, role=role) as c:
        direct = [
            r[0]
            for r in c.execute(
                "select message from public.comments where message like 'secret chat%'"
            ).fetchall()
        ]
        if user is None:  # anon reads the table only (get_comments is for signed-in users)
            return direct
        listed = c.execute("select public.get_comments('a1', 1)").fetchone()
    assert listed is not None
    return direct + [
        item["message"] for item in listed[0]["items"] if item["message"].startswith("secret chat")
    ]


def test_a_deleted_private_rooms_chat_never_becomes_public(conn):
    result = create_room(conn, public=False)
    room_id = result["room"]["room_id"]
    join(conn, "bob", room_id, result["access_key"])
    for user in ("alice", "bob"):
        rpc(
            conn,
            user,
            "select public.post_comment('a1', 1, %s, p_room_id => %s)",
            (f"secret chat from {user}", room_id),
        )
    assert _visible_chat(conn, "carol") == [] and _visible_chat(conn, None) == []
    rpc(conn, "alice", "select public.delete_room(%s)", (room_id,))
    assert _visible_chat(conn, "carol") == []
    assert _visible_chat(conn, None) == []
    assert _visible_chat(conn, "bob") == []  # former members too: nothing is left
    assert conn.execute(
        "select count(*) from public.comments where room_id is null and not is_anchor"
    ).fetchone() == (0,)


# ---------------------------------------------------------------------------------------------
# look-ups
# ---------------------------------------------------------------------------------------------
def test_get_room_hides_private_rooms_from_non_members(conn):
    private_id = create_room(conn, public=False)["room"]["room_id"]
    public_id = create_room(conn)["room"]["room_id"]
    expect_error(conn, "bob", "select public.get_room(%s)", (private_id,), "P0002", "not found")
    view = rpc(conn, "bob", "select public.get_room(%s)", (public_id,))
    assert view["member_count"] == 1 and view["members"][0]["user_id"] == "alice"
    assert view["is_member"] is False and view["access_key"] is None


def test_list_public_rooms_keyset_pagination(conn):
    ids = [create_room(conn, f"user{i}", title=f"Room {i}")["room"]["room_id"] for i in range(5)]
    create_room(conn, "hidden", public=False)
    # Distinct activity times, newest = ids[4].
    for i, room_id in enumerate(ids):
        conn.execute(
            "update public.rooms set last_activity = now() - make_interval(mins => %s) where room_id = %s",
            (10 - i, room_id),
        )
    join(conn, "bob", ids[4])
    conn.execute(
        "update public.rooms set last_activity = now() - interval '1 minute' where room_id = %s",
        (ids[4],),
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = rpc(conn, "bob", "select public.list_public_rooms(null, 2, %s)", (cursor,))
        seen += [r["room_id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids)) and pages == 3
    first = rpc(conn, "bob", "select public.list_public_rooms(null, 1)")["items"][0]
    assert first["room_id"] == ids[4] and first["member_count"] == 2
    assert rpc(conn, "bob", "select public.list_public_rooms('other-anime')")["items"] == []
    expect_error(conn, "bob", "select public.list_public_rooms(null, 0)", (), "22023", "p_limit")
    expect_error(conn, "bob", "select public.list_public_rooms(null, 101)", (), "22023", "p_limit")
    expect_error(
        conn, "bob", "select public.list_public_rooms(null, 5, 'garbage')", (), "22023", "p_cursor"
    )


def test_rpcs_are_not_executable_by_anon_or_public(conn):
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.proname in ('create_room', 'join_room', 'leave_room',"
        " 'kick_member', 'transfer_host', 'update_room', 'delete_room', 'get_room', 'get_room_access_key',"
        " 'list_public_rooms', 'post_comment', 'edit_comment', 'delete_comment', 'get_comments',"
        " 'get_or_create_anchor')"
    ).fetchall()
    assert len(rows) == 15
    for (proc,) in rows:
        grants = conn.execute(
            "select has_function_privilege('anon', %s, 'execute'),"
            " has_function_privilege('authenticated', %s, 'execute'),"
            " has_function_privilege('service_role', %s, 'execute')",
            (proc, proc, proc),
        ).fetchone()
        assert grants == (False, True, True), proc


def test_concurrent_wrong_keys_are_counted_exactly(watchium_db_url, conn):
    conn.execute(
        "update watchium_private.settings set value = '5' where key = 'access_key_guess_budget'"
    )
    created = create_room(conn, public=False)
    room_id, key = created["room"]["room_id"], created["access_key"]
    wrong = f"{(int(key) + 3) % 1000000:06d}"
    barrier = threading.Barrier(12)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        with psycopg.connect(watchium_db_url, autocommit=True) as c:
            barrier.wait()
            try:
                outcome = join(c, f"guesser{index}", room_id, wrong)["status"]
            except psycopg.Error as exc:
                outcome = exc.sqlstate or "?"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["WD429"] * 7 + ["invalid_access_key"] * 5
    assert conn.execute(
        "select wrong_attempts from watchium_private.room_secrets where room_id = %s", (room_id,)
    ).fetchone() == (5,)


def test_memberships_per_user_are_capped(conn):
    """max_memberships_per_user (default 50): past it join_room and create_room raise WD409."""
    assert (
        conn.execute(
            "select value::integer from watchium_private.settings where key = 'max_memberships_per_user'"
        ).fetchone()[0]
        == 50
    )
    conn.execute(
        "update watchium_private.settings set value = '3' where key = 'max_memberships_per_user'"
    )
    rooms = [create_room(conn, f"host{i}")["room"]["room_id"] for i in range(5)]
    create_room(conn, "bob")
    assert join(conn, "bob", rooms[0])["status"] == "joined"
    assert join(conn, "bob", rooms[1])["status"] == "joined"
    expect_error(
        conn,
        "bob",
        "select public.join_room(%s, null, 'Bob')",
        (rooms[2],),
        "WD409",
        "max_memberships_per_user",
    )
    expect_error(conn, "bob", CREATE, ("Four", "Bob", True), "WD409", "max_memberships_per_user")
    # Rejoining a room you are in is not a new membership.
    assert join(conn, "bob", rooms[0])["status"] == "already_member"
    assert conn.execute(
        "select count(*) from public.room_members where user_id = 'bob'"
    ).fetchone() == (3,)
    rpc(conn, "bob", "select public.leave_room(%s)", (rooms[0],))
    assert join(conn, "bob", rooms[2])["status"] == "joined"
