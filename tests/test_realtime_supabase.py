"""On Supabase (a stand-in realtime schema with Supabase's documented signatures): the
database's room events land in realtime.messages on room:<room_id>, where members may only
receive, and member broadcasts on room:<room_id>:members, where members receive and send; nobody
else does either. Realtime Authorization is installed by the migration when the migrating role
may create policies on realtime.messages (comments are optional), and what it could not install
is printed by the upgrade and reported by doctor with a fix that works."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from watchium_db import cli, migrate
from watchium_db.testing import as_user
from watchium_db.testing.realtime import (
    install_realtime_standin,
    realtime_topic,
    refuse_policy_commands,
)

ROOM = "sbroom0001"
OTHER = "sbroom0002"
POLICIES = ["watchium_messages_insert_authenticated", "watchium_messages_select_authenticated"]


def _room(conn: psycopg.Connection[Any], room_id: str, *members: str) -> None:
    conn.execute(
        "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,"
        " host_user_id, host_username) values (%s, 'T', 'a1', 'Anime', 1, 'https://e.x/v', %s, 'H')",
        (room_id, members[0]),
    )
    for i, user in enumerate(members):
        conn.execute(
            "insert into public.room_members (room_id, user_id, username, is_host) values (%s, %s, %s, %s)",
            (room_id, user, user, i == 0),
        )


@pytest.fixture
def supabase(conn):
    """The template database plus Realtime installed after our migrations (the common case)."""
    assert install_realtime_standin(conn)
    assert conn.execute("select watchium_private.install_realtime_authorization()").fetchone() == (
        True,
    )
    _room(conn, ROOM, "alice", "bob")
    _room(conn, OTHER, "carol")
    return conn


def _policies(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select policyname from pg_policies where schemaname = 'realtime' and tablename = 'messages' order by 1"
        ).fetchall()
    ]


def test_events_land_in_realtime_messages_on_the_room_topic(supabase, watchium_db_url):
    conn = supabase
    lconn = psycopg.connect(watchium_db_url, autocommit=True)
    try:
        lconn.execute(f'listen "watchium:room:{ROOM}"')
        assert conn.execute("select watchium_private.room_event_delivery()").fetchone() == (
            "realtime",
        )
        row = conn.execute(
            "select watchium_private.emit_room_event(%s, 'playback', %s)",
            (ROOM, json.dumps({"action": "pause", "current_time": 42})),
        ).fetchone()
        assert row is not None
        with as_user(conn, "bob") as c:
            c.execute(
                "select public.broadcast_to_room(%s, 'chat_message', '{\"message\": \"hey\"}')",
                (ROOM,),
            )
        notes = list(lconn.notifies(timeout=0.5))
    finally:
        lconn.close()
    assert notes == []  # the realtime path replaces NOTIFY
    messages = conn.execute(
        "select topic, extension, event, private, payload from realtime.messages"
        " where event in ('playback', 'chat_message') order by id"
    ).fetchall()
    assert [(t, x, e, p) for t, x, e, p, _ in messages] == [
        (f"room:{ROOM}", "broadcast", "playback", True),
        (f"room:{ROOM}:members", "broadcast", "chat_message", True),
    ]
    assert messages[0][4]["event_id"] == row[0]
    assert messages[0][4]["payload"] == {"action": "pause", "current_time": 42}
    assert messages[1][4]["payload"] == {"message": "hey", "user_id": "bob", "username": "bob"}


def test_delivery_both_sends_through_realtime_and_notify(supabase, watchium_db_url):
    conn = supabase
    conn.execute(
        "update watchium_private.settings set value = '\"both\"' where key = 'room_event_delivery'"
    )
    lconn = psycopg.connect(watchium_db_url, autocommit=True)
    try:
        lconn.execute(f'listen "watchium:room:{ROOM}"')
        conn.execute("select watchium_private.emit_room_event(%s, 'room_updated', '{}')", (ROOM,))
        notes = list(lconn.notifies(timeout=3, stop_after=1))
    finally:
        lconn.close()
    assert [json.loads(n.payload)["event"] for n in notes] == ["room_updated"]
    assert conn.execute(
        "select count(*) from realtime.messages where event = 'room_updated'"
    ).fetchone() == (1,)


def _can_receive(conn, user: str, topic: str) -> bool:
    """Realtime's receive check: the caller's SELECT on realtime.messages with the topic set."""
    conn.execute(
        "insert into realtime.messages (topic, extension, event, payload) values (%s, 'broadcast', 'x', '{}')",
        (topic,),
    )
    with as_user(conn, user) as c:
        realtime_topic(c, topic)
        row = c.execute(
            "select count(*) from realtime.messages where topic = realtime.topic()"
        ).fetchone()
    conn.execute("delete from realtime.messages")
    assert row is not None
    return bool(row[0])


def _can_send(conn, user: str, topic: str, extension: str = "broadcast") -> bool:
    """Realtime's send check: the caller's INSERT into realtime.messages with the topic set."""
    try:
        with as_user(conn, user) as c:
            realtime_topic(c, topic)
            c.execute(
                "insert into realtime.messages (topic, extension, event, payload) values (%s, %s, 'x', '{}')",
                (topic, extension),
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        assert "row-level security" in str(exc)
        return False
    return True


def test_members_receive_and_send_non_members_do_not(supabase):
    conn = supabase
    members = f"room:{ROOM}:members"
    for topic in (f"room:{ROOM}", members):
        assert _can_receive(conn, "alice", topic)
        assert _can_receive(conn, "bob", topic)
        assert not _can_receive(conn, "carol", topic)
    assert _can_receive(conn, "carol", f"room:{OTHER}")
    assert _can_receive(conn, "carol", f"room:{OTHER}:members")
    assert not _can_receive(conn, "bob", "room:")
    assert _can_send(conn, "bob", members)
    assert _can_send(conn, "bob", members, "presence")
    assert not _can_send(conn, "carol", members)
    assert not _can_send(conn, "bob", f"room:{OTHER}:members")
    assert not _can_send(conn, "bob", "global-presence")


def test_nobody_can_speak_with_the_databases_voice(supabase):
    """Realtime checks a channel's send policy once, at join: a member allowed to send on
    room:<id> could broadcast a playback seek, host_changed or room_deleted that others cannot
    tell from the database's. On room:<id> members, the host included, only receive."""
    conn = supabase
    for user in ("alice", "bob", "carol"):  # host, member, outsider
        for extension in ("broadcast", "presence"):
            assert not _can_send(conn, user, f"room:{ROOM}", extension)
    # The database's own events still get there.
    with as_user(conn, "alice") as c:
        c.execute("select public.transfer_host(%s, 'bob')", (ROOM,))
    assert conn.execute(
        "select topic from realtime.messages where event = 'host_changed'"
    ).fetchall() == [(f"room:{ROOM}",)]


def test_every_event_is_routed_to_its_topic(conn):
    """broadcast_to_room's types go to room:<id>:members, everything else to room:<id>; the
    listener's MEMBER_EVENTS are the same types."""
    from watchium_db.listener import MEMBER_EVENTS, channel_for, stream_of

    member_types = ["play", "pause", "seek", "chat_message"]
    database_types = [
        "member_joined", "member_left", "member_kicked", "host_changed", "room_updated",
        "room_deleted", "comment_added", "comment_edited", "comment_deleted", "playback",
        "sync_status",
    ]  # fmt: skip
    topics = dict(
        conn.execute(
            "select e, watchium_private.room_event_topic('abcdefghij', e) from unnest(%s::text[]) e",
            (member_types + database_types,),
        ).fetchall()
    )
    assert {e for e, t in topics.items() if t == "room:abcdefghij:members"} == MEMBER_EVENTS
    assert {e for e, t in topics.items() if t == "room:abcdefghij"} == set(database_types)
    for event, topic in topics.items():
        assert channel_for("abcdefghij", stream_of(event)) == "watchium:" + topic
    # broadcast_to_room accepts exactly the member types.
    for event in member_types + database_types:
        accepted = True
        try:
            with conn.transaction():
                conn.execute(
                    "select watchium_private.validate_broadcast_payload(%s, %s)",
                    (
                        event,
                        '{"current_time": 1}' if event != "chat_message" else '{"message": "x"}',
                    ),
                )
        except psycopg.errors.InvalidParameterValue:
            accepted = False
        assert accepted == (event in MEMBER_EVENTS), event


def test_anonymous_and_left_members_are_refused(supabase):
    conn = supabase
    with as_user(conn, None, role="anon") as c:
        realtime_topic(c, f"room:{ROOM}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("select count(*) from realtime.messages")
    conn.execute("delete from public.room_members where room_id = %s and user_id = 'bob'", (ROOM,))
    assert not _can_send(conn, "bob", f"room:{ROOM}:members")
    assert not _can_receive(conn, "bob", f"room:{ROOM}")
    assert not _can_receive(conn, "bob", f"room:{ROOM}:members")


def test_install_is_idempotent_and_health_flags_missing_policies(supabase):
    conn = supabase
    assert conn.execute("select watchium_private.install_realtime_authorization()").fetchone() == (
        True,
    )
    assert _policies(conn) == POLICIES
    report = conn.execute("select watchium_private.realtime_health()").fetchone()[0]
    assert report["ok"] and report["realtime"]["delivery"] == "realtime"
    assert report["authorization"] == {
        "required": True,
        "policies": {p: True for p in reversed(POLICIES)},
    }
    conn.execute("drop policy watchium_messages_insert_authenticated on realtime.messages")
    report = conn.execute("select watchium_private.realtime_health()").fetchone()[0]
    assert not report["ok"]
    assert any(
        "watchium_messages_insert_authenticated" in p and "install_realtime_authorization" in p
        for p in report["problems"]
    )


def test_migrations_install_policies_when_realtime_exists_first(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        install_realtime_standin(c)
    migrate.upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert _policies(c) == POLICIES
    migrate.downgrade(empty_db_url, "0005")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert _policies(c) == []
        assert c.execute("select to_regclass('realtime.messages') is not null").fetchone() == (
            True,
        )


# ---------------------------------------------------------------------------------------------
# what the migrating role may not do (Supabase images with supautils before 3.3, non-owners)
# ---------------------------------------------------------------------------------------------
def _comments(conn: psycopg.Connection[Any]) -> list[str | None]:
    return [
        r[0]
        for r in conn.execute(
            "select obj_description(p.oid, 'pg_policy') from pg_policy p"
            " where p.polrelid = 'realtime.messages'::regclass order by p.polname"
        ).fetchall()
    ]


def test_policies_are_installed_when_only_their_comments_are_refused(
    empty_db_url, monkeypatch, capsys
):
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        install_realtime_standin(c)
        assert c.execute(
            "select pg_get_userbyid(relowner) from pg_class where oid = 'realtime.messages'::regclass"
        ).fetchone() == ("supabase_realtime_admin",)
        refuse_policy_commands(c, "comment on policy")
    monkeypatch.setenv("WATCHIUM_DATABASE_URL", empty_db_url)
    assert cli.main(["upgrade"]) == 0
    assert "WARNING" not in capsys.readouterr().err  # nothing that matters is missing
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert _policies(c) == POLICIES
        assert _comments(c) == [None, None]
        # The installer works for this role too (before, the refused comment failed it).
        assert c.execute("select watchium_private.install_realtime_authorization()").fetchone() == (
            True,
        )
        assert _policies(c) == POLICIES
    assert cli.main(["doctor"]) == 0


def test_policies_that_could_not_be_installed_are_a_warning_doctor_reports_and_fixes(
    empty_db_url, monkeypatch, capsys
):
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        install_realtime_standin(c)
        refuse_policy_commands(c, "create policy", "comment on policy")
    monkeypatch.setenv("WATCHIUM_DATABASE_URL", empty_db_url)
    assert cli.main(["upgrade"]) == 0  # the rest of the schema is usable
    err = capsys.readouterr().err
    assert (
        "WARNING: watchium-db: Realtime Authorization is not installed: could not create"
        " policies on realtime.messages: must be owner of table messages" in err
    )
    fix = "select watchium_private.install_realtime_authorization();"
    assert f"fix: Run {fix}" in err
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert _policies(c) == []
    assert cli.main(["doctor"]) == 1
    problems = capsys.readouterr().out
    for policy in POLICIES:
        assert f"policy {policy} on realtime.messages is missing: run {fix}" in problems
    # The owner lets the migrating role create policies (as supautils does for postgres); the
    # comments stay refused, as on supautils before 3.3. The fix doctor names now works.
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        refuse_policy_commands(c, "comment on policy")
        assert c.execute(fix).fetchone() == (True,)
        assert _policies(c) == POLICIES
    assert cli.main(["doctor"]) == 0
