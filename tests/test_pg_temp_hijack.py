"""No function, policy or trigger of ours resolves a name to the caller's temporary objects.

A role that can run SQL (the app's login role on plain PostgreSQL, or an SQL injection in the
app) may create temporary objects. When a function's search_path does not list pg_temp,
PostgreSQL searches pg_temp *first* for type and relation names, so a temporary domain named
``text`` would run its CHECK — as the function's owner — inside every RPC. Our functions pin
``search_path = pg_catalog, pg_temp``: pg_temp last, after the catalog, and every relation
named with its schema.

The attacker here plants, as ``authenticated`` in its own session, a temporary domain over each
type our functions use (its CHECK logs who ran it) and a temporary table named like each of our
relations, then drives every kind of call through that session.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from watchium_db.client import Client
from watchium_db.testing import as_user, make_room

# Type names our functions declare, cast to or store that are looked up through search_path (SQL
# keywords such as `integer`, `numeric` or `boolean` always mean the built-in types). Each gets a
# hostile domain over the built-in type of that name.
TYPES = ("text", "int4", "int8", "bool", "float8", "jsonb", "json", "timestamptz", "uuid", "xid8")


def plant(conn: psycopg.Connection[Any]) -> list[str]:
    """Plant hostile temporary types and tables in ``conn``'s session, as ``authenticated``."""
    relations = [
        name
        for (name,) in conn.execute(
            """
            select distinct c.relname from pg_catalog.pg_class c
            join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('public', 'watchium_private', 'realtime')
              and c.relkind in ('r', 'p', 'v', 'm')
            """
        ).fetchall()
    ]
    conn.execute("set role authenticated")
    try:
        conn.execute("create temporary table hijack_log (who text, what text)")
        conn.execute("grant all on pg_temp.hijack_log to public")
        conn.execute(
            """
            create function pg_temp.hijacked(p_what pg_catalog.text) returns pg_catalog.bool
            language plpgsql as $$
            begin
              insert into pg_temp.hijack_log values (current_user, p_what);
              return true;
            end $$
            """
        )
        for name in TYPES:
            conn.execute(
                f"create domain pg_temp.{name} as pg_catalog.{name} "
                f"check (pg_temp.hijacked('type {name}'))"
            )
        for name in relations:
            conn.execute(f'create temporary table "{name}" (hijack pg_catalog.int4)')
            conn.execute(f"insert into pg_temp.\"{name}\" values (1)")
    finally:
        conn.execute("reset role")
    return relations


def hijacks(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Planted checks that ran with the rights of our functions' owner.

    The attacker's own statements (the client's casts, run as the API role the client switched
    to) may meet its own traps; that gains it nothing. A check run as the owner is a hijack.
    """
    return conn.execute(
        """
        select who, what from pg_temp.hijack_log
        where who = (select pg_catalog.pg_get_userbyid(proowner) from pg_catalog.pg_proc
                     where oid = 'public.join_room'::regproc)
        """
    ).fetchall()


@pytest.fixture
def attacked(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    assert "rooms" in plant(conn)
    return conn


def test_planted_objects_would_be_found_by_an_unpinned_function(attacked):
    """The trap works: a function with an empty search_path does resolve to the planted objects."""
    attacked.execute(
        """
        create function pg_temp.unpinned() returns pg_catalog.int4
        language plpgsql set search_path = '' as $$
        declare v text := 'x';
        begin
          return (select count(*) from rooms);
        end $$
        """
    )
    assert attacked.execute("select pg_temp.unpinned()").fetchone()[0] == 1  # the planted table
    assert "type text" in {what for _, what in hijacks(attacked)}


def test_no_rpc_policy_or_trigger_resolves_to_temporary_objects(attacked):
    client = Client(attacked)
    room = make_room(attacked, host="alice", members=["bob"], private=True)
    public = make_room(attacked, host="carol", members=["dave"])
    alice, bob = client.as_user("alice"), client.as_user("bob")

    alice.get_room(room.room_id)
    assert alice.get_room_access_key(room.room_id) == room.access_key
    alice.change_playback_state(room.room_id, True, 12.5)
    alice.seek_to_time(room.room_id, 30)
    alice.set_playback_speed(room.room_id, 1.5)
    bob.record_heartbeat(room.room_id, 30, True)
    alice.get_room_sync_state(room.room_id)
    alice.get_room_sync_metrics(room.room_id)
    posted = bob.post_comment(
        anime_id="a1", episode_number=1, room_id=room.room_id, message="vicky: ep1.mkv",
        video_timestamp=31,
    )
    bob.edit_comment(posted.id, "edited")
    alice.get_comments(anime_id="a1", episode_number=1, room_id=room.room_id)
    client.as_user("erin").get_or_create_anchor("a1", 2)
    client.as_user("erin").list_public_rooms()
    bob.broadcast_to_room(room.room_id, "chat_message", {"message": "hi"})
    bob.check_rate_limit("bob", "custom_action")
    bob.delete_comment(posted.id)
    # Governance and coordination (revisions 0009-0025).
    alice.set_member_role(room.room_id, "bob", "co_host")
    alice.set_room_sync_options(room.room_id, {"episode_countdown": 3})
    bob.add_to_queue(
        room_id=room.room_id, anime_id="a1", anime_title="Anime", episode_number=2,
        video_url="https://example.com/v", duration=60,
    )  # fmt: skip
    bob.get_queue(room.room_id)
    bob.report_playback_status(room.room_id, "buffering", 30)
    bob.report_playback_status(room.room_id, "ready", 30)
    alice.start_ready_check(room.room_id, 30)
    bob.set_ready(room.room_id, True)
    alice.start_ready_check(room.room_id, 30)
    alice.cancel_ready_check(room.room_id)
    alice.mute_member(room_id=room.room_id, user_id="bob", duration_seconds=60)
    alice.ban_member(room_id=room.room_id, user_id="mallory", duration_seconds=60)
    alice.get_room_moderation(room.room_id)
    alice.set_room_join_policy(room.room_id, "approval")
    erin = client.as_user("erin")
    erin.request_to_join(room.room_id, username="Erin", message="hi", access_key=room.access_key)
    alice.get_join_requests(room.room_id)
    alice.answer_join_request(room.room_id, "erin", True)
    erin.join_room(room.room_id, username="Erin")
    alice.transfer_host(room.room_id, "bob")
    bob.kick_member(room.room_id, "alice")
    client.as_user("dave").leave_room(public.room_id)
    client.service().record_heartbeats(
        public.room_id, [{"user_id": "carol", "current_time": 1, "is_playing": False}]
    )
    client.service().maintain()
    # Reads through the tables' row level security (policy helpers), as each API role.
    for role, user in (("authenticated", "bob"), ("anon", None)):
        with as_user(attacked, user, role=role):
            for table in ("rooms", "room_members", "comments", "sync_states", "sync_records"):
                if attacked.execute(
                    "select pg_catalog.has_table_privilege(%s, %s, 'select')", (role, f"public.{table}")
                ).fetchone()[0]:
                    attacked.execute(f"select count(*) from public.{table}").fetchone()
    client.as_user("carol").delete_room(public.room_id)
    assert hijacks(attacked) == []
