"""Valid text is stored exactly as given (hypothesis), for every checked text argument.

Every RPC argument that goes through ``watchium_private.check_text`` / ``check_url`` is drawn
from valid values (no leading or trailing white space, no control characters, no bidi
overrides, within its length) and read back from the table it is stored in: the stored value
must equal the argument, character for character. Values that start or end with ``v`` are
drawn on purpose: a trim set written as ``E'\\v'`` (PostgreSQL has no such escape) strips them.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from watchium_db.testing import as_user

EXAMPLES = int(os.environ.get("WATCHIUM_HYPOTHESIS_EXAMPLES", "25"))

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

#: Characters a valid text may contain anywhere: no controls, surrogates or bidi controls.
inner_char = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=BIDI_CONTROLS)
#: The first and last character: visible (a letter, digit, punctuation or symbol).
edge_char = st.one_of(st.just("v"), st.characters(whitelist_categories=("L", "N", "P", "S")))


def valid_text(max_size: int, *, newlines: bool = False) -> st.SearchStrategy[str]:
    middle_char = st.one_of(inner_char, st.just("\n")) if newlines else inner_char
    single = edge_char
    longer = st.builds(
        lambda a, m, b: a + m + b,
        edge_char,
        st.text(middle_char, max_size=max(0, min(max_size - 2, 40))),
        edge_char,
    )
    return st.one_of(single, longer).filter(lambda s: len(s) <= max_size)


url_char = st.sampled_from(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/?=&%"
)
valid_url = st.builds(
    lambda scheme, host, path, tail: f"{scheme}://{host}/{path}{tail}",
    st.sampled_from(["https", "http"]),
    st.sampled_from(["example.com", "vv.example.org", "cdn.v"]),
    st.text(url_char, max_size=30),
    st.sampled_from(["", "v", ".mkv", "ep1.mkv"]),
)

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def rpc(conn: psycopg.Connection[Any], user: str, function: str, **args: Any) -> Any:
    named = ", ".join(f"{name} => %({name})s" for name in args)
    with as_user(conn, user) as c:
        row = c.execute(f"select public.{function}({named})", args).fetchone()
    assert row is not None
    return row[0]


def create_room(conn: psycopg.Connection[Any], user: str = "host", **overrides: Any) -> str:
    args: dict[str, Any] = {
        "p_title": "Room",
        "p_anime_id": "a1",
        "p_anime_title": "Anime",
        "p_episode_number": 1,
        "p_video_url": "https://example.com/v.m3u8",
        "p_username": "Host",
    }
    args.update(overrides)
    return str(rpc(conn, user, "create_room", **args)["room"]["room_id"])


@SETTINGS
@given(
    title=valid_text(200),
    anime_id=valid_text(100),
    anime_title=valid_text(300),
    video_url=valid_url,
    username=valid_text(50),
    source_id=valid_text(100),
    avatar_url=valid_url,
)
@example(
    title="vicky", anime_id="v", anime_title="Vivid v", video_url="https://x.y/ep1.mkv",
    username="vicky", source_id="vv", avatar_url="https://x.y/av",
)  # fmt: skip
def test_create_room_stores_text_as_given(
    conn, title, anime_id, anime_title, video_url, username, source_id, avatar_url
):
    with conn.transaction(force_rollback=True):
        room_id = create_room(
            conn, p_title=title, p_anime_id=anime_id, p_anime_title=anime_title,
            p_video_url=video_url, p_username=username, p_source_id=source_id,
            p_avatar_url=avatar_url,
        )  # fmt: skip
        stored = conn.execute(
            "select r.title, r.anime_id, r.anime_title, r.video_url, r.host_username, r.source_id,"
            " m.username, m.avatar_url"
            " from public.rooms r join public.room_members m using (room_id)"
            " where r.room_id = %s",
            (room_id,),
        ).fetchone()
        assert stored == (
            title,
            anime_id,
            anime_title,
            video_url,
            username,
            source_id,
            username,
            avatar_url,
        )


@SETTINGS
@given(username=valid_text(50), avatar_url=valid_url)
@example(username="vicky", avatar_url="https://x.y/v")
def test_join_room_stores_text_as_given(conn, username, avatar_url):
    with conn.transaction(force_rollback=True):
        room_id = create_room(conn)
        rpc(conn, "joiner", "join_room", p_room_id=room_id, p_username=username,
            p_avatar_url=avatar_url)  # fmt: skip
        stored = conn.execute(
            "select username, avatar_url from public.room_members"
            " where room_id = %s and user_id = 'joiner'",
            (room_id,),
        ).fetchone()
        assert stored == (username, avatar_url)


@SETTINGS
@given(title=valid_text(200), video_url=valid_url)
@example(title="vicky", video_url="https://x.y/ep1.mkv")
def test_update_room_stores_text_as_given(conn, title, video_url):
    with conn.transaction(force_rollback=True):
        room_id = create_room(conn)
        rpc(conn, "host", "update_room", p_room_id=room_id, p_title=title, p_video_url=video_url)
        stored = conn.execute(
            "select title, video_url from public.rooms where room_id = %s", (room_id,)
        ).fetchone()
        assert stored == (title, video_url)


@SETTINGS
@given(
    anime_id=valid_text(100),
    message=valid_text(2000, newlines=True),
    username=valid_text(50),
    avatar_url=valid_url,
    edited=valid_text(2000, newlines=True),
)
@example(anime_id="v", message="vvv\nv", username="vicky", avatar_url="https://x.y/v", edited="v")
def test_comments_store_text_as_given(conn, anime_id, message, username, avatar_url, edited):
    with conn.transaction(force_rollback=True):
        comment = rpc(
            conn, "author", "post_comment", p_anime_id=anime_id, p_episode_number=1,
            p_message=message, p_username=username, p_avatar_url=avatar_url,
        )  # fmt: skip
        stored = conn.execute(
            "select anime_id, message, username, avatar_url from public.comments where id = %s",
            (comment["id"],),
        ).fetchone()
        assert stored == (anime_id, message, username, avatar_url)

        rpc(conn, "author", "edit_comment", p_comment_id=comment["id"], p_message=edited)
        stored = conn.execute(
            "select message from public.comments where id = %s", (comment["id"],)
        ).fetchone()
        assert stored == (edited,)


@SETTINGS
@given(anime_id=valid_text(100))
@example(anime_id="vivid")
def test_anchor_stores_anime_id_as_given(conn, anime_id):
    with conn.transaction(force_rollback=True):
        anchor = rpc(conn, "author", "get_or_create_anchor", p_anime_id=anime_id,
                     p_episode_number=3)  # fmt: skip
        stored = conn.execute(
            "select anime_id from public.comments where id = %s", (anchor["id"],)
        ).fetchone()
        assert stored == (anime_id,)


@SETTINGS
@given(anime_id=valid_text(100), anime_title=valid_text(300), video_url=valid_url)
@example(anime_id="v", anime_title="vivid v", video_url="https://x.y/v")
def test_queue_stores_text_as_given(conn, anime_id, anime_title, video_url):
    with conn.transaction(force_rollback=True):
        room_id = create_room(conn)
        item = rpc(
            conn, "host", "add_to_queue", p_room_id=room_id, p_anime_id=anime_id,
            p_anime_title=anime_title, p_episode_number=2, p_video_url=video_url, p_duration=60,
        )  # fmt: skip
        assert item is not None
        stored = conn.execute(
            "select anime_id, anime_title, video_url from public.room_queue where room_id = %s",
            (room_id,),
        ).fetchall()
        assert stored == [(anime_id, anime_title, video_url)]


@SETTINGS
@given(ban_reason=valid_text(500), mute_reason=valid_text(500))
@example(ban_reason="v", mute_reason="vv v")
def test_ban_and_mute_store_their_reason_as_given(conn, ban_reason, mute_reason):
    with conn.transaction(force_rollback=True):
        room_id = create_room(conn)
        rpc(conn, "muted", "join_room", p_room_id=room_id, p_username="Muted")
        rpc(conn, "host", "mute_member", p_room_id=room_id, p_user_id="muted",
            p_reason=mute_reason)  # fmt: skip
        rpc(conn, "host", "ban_member", p_room_id=room_id, p_user_id="banned",
            p_reason=ban_reason)  # fmt: skip
        moderation = rpc(conn, "host", "get_room_moderation", p_room_id=room_id)
        assert [m["reason"] for m in moderation["mutes"]] == [mute_reason]
        assert [b["reason"] for b in moderation["bans"]] == [ban_reason]


@SETTINGS
@given(username=valid_text(50), message=valid_text(200))
@example(username="vicky", message="v v")
def test_join_requests_store_text_as_given(conn, username, message):
    with conn.transaction(force_rollback=True):
        room_id = create_room(conn)
        rpc(conn, "host", "set_room_join_policy", p_room_id=room_id, p_policy="approval")
        rpc(conn, "asker", "request_to_join", p_room_id=room_id, p_username=username,
            p_message=message)  # fmt: skip
        requests = rpc(conn, "host", "get_join_requests", p_room_id=room_id)["requests"]
        assert [(r["username"], r["message"]) for r in requests] == [(username, message)]


def test_every_checked_text_argument_is_covered(conn):
    """Every text argument of a public RPC that check_text / check_url checks is exercised
    above: a new one fails here until it is added."""
    covered = {
        ("create_room", "p_title"), ("create_room", "p_anime_id"),
        ("create_room", "p_anime_title"), ("create_room", "p_video_url"),
        ("create_room", "p_username"), ("create_room", "p_source_id"),
        ("create_room", "p_avatar_url"),
        ("join_room", "p_username"), ("join_room", "p_avatar_url"),
        ("update_room", "p_title"), ("update_room", "p_video_url"),
        ("post_comment", "p_anime_id"), ("post_comment", "p_message"),
        ("post_comment", "p_username"), ("post_comment", "p_avatar_url"),
        ("edit_comment", "p_message"),
        ("get_or_create_anchor", "p_anime_id"),
        ("add_to_queue", "p_anime_id"), ("add_to_queue", "p_anime_title"),
        ("add_to_queue", "p_video_url"),
        ("ban_member", "p_reason"), ("mute_member", "p_reason"),
        ("request_to_join", "p_username"), ("request_to_join", "p_message"),
    }  # fmt: skip
    rows = conn.execute(
        r"""
        select p.proname, m[1]
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        cross join lateral pg_catalog.regexp_matches(
          p.prosrc,
          'watchium_private\.check_(?:text|url|username)\(\s*''(p_[a-z_]+)''', 'g') as m
        where n.nspname in ('public', 'watchium_rpc')  -- the bodies of the public RPCs
        """
    ).fetchall()
    found = {(name, arg) for name, arg in rows}
    assert found, "no checked text argument found: the pattern is out of date"
    assert found <= covered, f"not covered: {sorted(found - covered)}"
