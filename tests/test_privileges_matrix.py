"""The privileges matrix: every table x caller x action, and every function's EXECUTE.

The expected outcome is declared in the tables below and checked against a database at head with
Supabase's default grants installed. Callers:

  anon          no JWT sub, role anon
  stranger      signed in, member of no room
  member        member of the private room
  host          host of the private room
  service_role  role service_role (bypasses RLS)

Outcomes for SELECT: ``all`` sees the private room's rows and the public room's rows;
``public`` sees only the public room's rows (and rows tied to no room); ``mine`` sees only the
rows of the caller's own (private) room; ``none`` sees no rows; ``denied`` gets
permission denied (42501). Outcomes for writes: ``denied`` means 42501, nothing changes.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db.testing import as_user

CALLERS = ("anon", "stranger", "member", "host", "service_role")

TABLE_MATRIX = """
table          action  anon    stranger  member  host    service_role
rooms          select  public  public    all     all     all
rooms          insert  denied  denied    denied  denied  denied
rooms          update  denied  denied    denied  denied  denied
rooms          delete  denied  denied    denied  denied  denied
room_members   select  public  public    all     all     all
room_members   insert  denied  denied    denied  denied  denied
room_members   update  denied  denied    denied  denied  denied
room_members   delete  denied  denied    denied  denied  denied
comments       select  public  public    all     all     all
comments       insert  denied  denied    denied  denied  denied
comments       update  denied  denied    denied  denied  denied
comments       delete  denied  denied    denied  denied  denied
sync_states    select  denied  none      mine    mine    all
sync_states    insert  denied  denied    denied  denied  denied
sync_states    update  denied  denied    denied  denied  denied
sync_states    delete  denied  denied    denied  denied  denied
sync_records   select  denied  none      mine    mine    all
sync_records   insert  denied  denied    denied  denied  denied
sync_records   update  denied  denied    denied  denied  denied
sync_records   delete  denied  denied    denied  denied  denied
room_queue     select  public  public    all     all     all
room_queue     insert  denied  denied    denied  denied  denied
room_queue     update  denied  denied    denied  denied  denied
room_queue     delete  denied  denied    denied  denied  denied
room_permissions select  public  public    all     all     all
room_permissions insert  denied  denied    denied  denied  denied
room_permissions update  denied  denied    denied  denied  denied
room_permissions delete  denied  denied    denied  denied  denied
"""

PRIVATE_ROOM = "privroom01"
PUBLIC_ROOM = "pubroom001"

FIXTURE_SQL = f"""
insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,
                          host_user_id, host_username, is_public) values
  ('{PRIVATE_ROOM}', 'Private', 'a1', 'Anime', 1, 'https://example.com/p', 'host', 'Host', false),
  ('{PUBLIC_ROOM}', 'Public', 'a1', 'Anime', 1, 'https://example.com/q', 'other', 'Other', true);
insert into watchium_private.room_secrets (room_id, access_key) values ('{PRIVATE_ROOM}', '123456');
insert into public.room_members (room_id, user_id, username, is_host) values
  ('{PRIVATE_ROOM}', 'host', 'Host', true),
  ('{PRIVATE_ROOM}', 'member', 'Member', false),
  ('{PUBLIC_ROOM}', 'other', 'Other', true);
insert into public.comments (anime_id, room_id, episode_number, user_id, username, message) values
  ('a1', '{PRIVATE_ROOM}', 1, 'member', 'Member', 'private hello'),
  ('a1', '{PUBLIC_ROOM}', 1, 'other', 'Other', 'public hello');
insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference,
                                is_synced, sync_event_type) values
  ('{PRIVATE_ROOM}', 'member', 1, 1, 0, true, 'join'),
  ('{PUBLIC_ROOM}', 'other', 1, 1, 0, true, 'join');
insert into public.sync_states (room_id, host_time, sync_event_type, member_ids, member_times) values
  ('{PRIVATE_ROOM}', 5, 'seek', '{{host,member}}', '{{5,4}}'),
  ('{PUBLIC_ROOM}', 5, 'seek', '{{other}}', '{{5}}');
insert into public.room_queue (room_id, position, anime_id, anime_title, episode_number, video_url,
                               duration, added_by, added_by_username) values
  ('{PRIVATE_ROOM}', 1, 'a1', 'Anime', 2, 'https://example.com/p2', 1440, 'member', 'Member'),
  ('{PUBLIC_ROOM}', 1, 'a1', 'Anime', 2, 'https://example.com/q2', 1440, 'other', 'Other');
insert into public.room_permissions (room_id, permission, min_role) values
  ('{PRIVATE_ROOM}', 'chat', 'viewer'),
  ('{PUBLIC_ROOM}', 'chat', 'viewer');
"""

VIEWS = {"sync_records"}

WRITES = {
    "insert": {
        "rooms": "insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url) values ('zzzzzzzzzz', 't', 'a', 'A', 1, 'https://x.y/z')",
        "room_members": f"insert into public.room_members (room_id, user_id, username) values ('{PRIVATE_ROOM}', 'intruder', 'I')",
        "comments": "insert into public.comments (anime_id, episode_number, user_id, username, message) values ('a1', 1, 'x', 'X', 'forged')",
        "sync_states": f"insert into public.sync_states (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type) values ('{PRIVATE_ROOM}', 'x', 1, 1, 0, true, 'seek')",
        "sync_records": f"insert into public.sync_records (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type) values ('{PRIVATE_ROOM}', 'x', 1, 1, 0, true, 'seek')",
        "room_queue": f"insert into public.room_queue (room_id, position, anime_id, anime_title, episode_number, video_url, duration, added_by_username) values ('{PRIVATE_ROOM}', 7, 'a1', 'A', 1, 'https://x.y/z', 10, 'X')",
        "room_permissions": f"insert into public.room_permissions (room_id, permission, min_role) values ('{PRIVATE_ROOM}', 'control_playback', 'viewer')",
    },
    "update": {
        "rooms": "update public.rooms set title = 'hijacked'",
        "room_members": "update public.room_members set is_host = not is_host",
        "comments": "update public.comments set message = 'edited'",
        "sync_states": "update public.sync_states set is_synced = false",
        "sync_records": "update public.sync_records set is_synced = false",
        "room_queue": "update public.room_queue set position = position + 10",
        "room_permissions": "update public.room_permissions set min_role = 'viewer', permission = 'control_playback'",
    },
    "delete": {
        "rooms": "delete from public.rooms",
        "room_members": "delete from public.room_members",
        "comments": "delete from public.comments",
        "sync_states": "delete from public.sync_states",
        "sync_records": "delete from public.sync_records",
        "room_queue": "delete from public.room_queue",
        "room_permissions": "delete from public.room_permissions",
    },
}


def parse_matrix(text: str) -> list[tuple[str, str, str, str]]:
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert header[2:] == list(CALLERS)
    return [
        (row[0], row[1], caller, outcome)
        for row in rows
        for caller, outcome in zip(CALLERS, row[2:], strict=True)
    ]


CASES = parse_matrix(TABLE_MATRIX)


def caller_context(conn: psycopg.Connection[Any], caller: str) -> Any:
    if caller == "anon":
        return as_user(conn, None, role="anon")
    if caller == "service_role":
        return as_user(conn, None, role="service_role")
    return as_user(conn, caller)


def visible_rooms(conn: psycopg.Connection[Any], table: str) -> set[str | None]:
    rows = conn.execute(f"select distinct room_id from public.{table}").fetchall()
    return {room for (room,) in rows}


def test_matrix_covers_every_table_and_action():
    declared = {(t, a) for t, a, _, _ in CASES}
    tables = {
        "rooms",
        "room_members",
        "comments",
        "sync_states",
        "sync_records",
        "room_permissions",
        "room_queue",
    }
    assert declared == {(t, a) for t in tables for a in ("select", "insert", "update", "delete")}


@pytest.fixture
def matrix_db(conn):
    conn.execute(FIXTURE_SQL)
    return conn


@pytest.mark.parametrize(("table", "action", "caller", "expected"), CASES)
def test_table_privileges(matrix_db, table, action, caller, expected):
    conn = matrix_db
    if action == "select":
        if expected == "denied":
            with pytest.raises(errors.InsufficientPrivilege), caller_context(conn, caller) as c:
                c.execute(f"select * from public.{table}")
            return
        with caller_context(conn, caller) as c:
            seen = visible_rooms(c, table)
        want = {
            "all": {PRIVATE_ROOM, PUBLIC_ROOM},
            "public": {PUBLIC_ROOM},
            "mine": {PRIVATE_ROOM},
            "none": set(),
        }[expected]
        assert seen == want
        return

    assert expected == "denied"
    before = conn.execute(
        f"select count(*), md5(string_agg(t::text, ',' order by t::text)) from public.{table} t"
    ).fetchone()
    # A view of a UNION is never writable: PostgreSQL says so before it checks privileges,
    # so for sync_records the missing privilege is checked by name as well.
    refusals: tuple[type[Exception], ...] = (errors.InsufficientPrivilege,)
    if table in VIEWS:
        refusals = (errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState)
        role = {"anon": "anon", "service_role": "service_role"}.get(caller, "authenticated")
        assert not conn.execute(
            "select has_table_privilege(%s, %s, %s)", (role, f"public.{table}", action)
        ).fetchone()[0]
    with pytest.raises(refusals), caller_context(conn, caller) as c:
        c.execute(WRITES[action][table])
    after = conn.execute(
        f"select count(*), md5(string_agg(t::text, ',' order by t::text)) from public.{table} t"
    ).fetchone()
    assert before == after


# -------------------------------------------------------------------------------------------
# EXECUTE on every function. Every function of public is listed (a new one fails the test until
# it is declared); its security definer body in watchium_rpc has exactly the same EXECUTE (the
# public entry point is security invoker and calls the body with the caller's rights). In
# watchium_private nobody may execute anything except the listed helpers.
# -------------------------------------------------------------------------------------------
FUNCTION_MATRIX = """
function                             anon  authenticated  service_role
public.check_rate_limit              -     yes            yes
public.create_room                   -     yes            yes
public.join_room                     -     yes            yes
public.leave_room                    -     yes            yes
public.kick_member                   -     yes            yes
public.transfer_host                 -     yes            yes
public.update_room                   -     yes            yes
public.delete_room                   -     yes            yes
public.get_room                      -     yes            yes
public.get_room_access_key           -     yes            yes
public.list_public_rooms             -     yes            yes
public.post_comment                  -     yes            yes
public.edit_comment                  -     yes            yes
public.delete_comment                -     yes            yes
public.get_comments                  -     yes            yes
public.get_or_create_anchor          -     yes            yes
public.broadcast_to_room             -     yes            yes
public.change_playback_state         -     yes            yes
public.seek_to_time                  -     yes            yes
public.set_playback_speed            -     yes            yes
public.bulk_sync_update              -     yes            yes
public.record_heartbeat              -     yes            yes
public.record_heartbeats             -     -              yes
public.get_room_sync_state           -     yes            yes
public.get_room_events               -     yes            yes
public.get_room_sync_options         -     yes            yes
public.set_room_sync_options         -     yes            yes
public.get_room_sync_metrics         -     yes            yes
public.record_realtime_metrics       -     yes            yes
public.get_realtime_metrics_summary  -     yes            yes
public.realtime_health               -     -              yes
public.maintain                      -     -              yes
public.install_maintenance_schedule  -     -              yes
public.sync_history_health           -     -              yes
public.forget_user                   -     -              yes
public.set_member_role               -     yes            yes
public.set_room_permission           -     yes            yes
public.get_room_permissions          -     yes            yes
public.ban_member                    -     yes            yes
public.unban_member                  -     yes            yes
public.mute_member                   -     yes            yes
public.unmute_member                 -     yes            yes
public.hide_member_comments          -     yes            yes
public.get_room_moderation           -     yes            yes
watchium_private.current_user_id     -     yes            -
public.add_to_queue                  -     yes            yes
public.move_queue_item               -     yes            yes
public.remove_queue_item             -     yes            yes
public.advance_queue                 -     yes            yes
public.get_queue                     -     yes            yes
public.report_playback_status        -     yes            yes
public.set_wait_opt_out              -     yes            yes
public.force_resume                  -     yes            yes
public.start_ready_check             -     yes            yes
public.set_ready                     -     yes            yes
public.cancel_ready_check            -     yes            yes
public.set_room_join_policy          -     yes            yes
public.request_to_join               -     yes            yes
public.get_join_requests             -     yes            yes
public.answer_join_request           -     yes            yes
public.withdraw_join_request         -     yes            yes
watchium_private.my_room_ids         -     yes            -
watchium_private.read_room_events    -     -              yes
watchium_private.read_room_event     -     -              yes
"""

ROLES = ("anon", "authenticated", "service_role")


def parse_function_matrix(text: str) -> dict[str, set[str]]:
    lines = [line.split() for line in text.strip().splitlines()]
    assert tuple(lines[0][1:]) == ROLES
    return {
        row[0]: {role for role, mark in zip(ROLES, row[1:], strict=True) if mark == "yes"}
        for row in lines[1:]
    }


FUNCTION_EXECUTE = parse_function_matrix(FUNCTION_MATRIX)


def test_function_execute_privileges(conn):
    rows = conn.execute(
        """
        select n.nspname || '.' || p.proname,
               array(select r from unnest(array['anon', 'authenticated', 'service_role']) as r
                     where pg_catalog.has_function_privilege(r, p.oid, 'execute')),
               pg_catalog.has_function_privilege('public', p.oid, 'execute')
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'watchium_private', 'watchium_rpc')
          and not exists (select from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
        """
    ).fetchall()
    actual = {name: set(roles) for name, roles, _ in rows}
    public_functions = {name for name in actual if name.startswith("public.")}
    declared_public = {name for name in FUNCTION_EXECUTE if name.startswith("public.")}
    assert public_functions == declared_public, "declare every public function's EXECUTE above"
    bodies = {
        name.removeprefix("watchium_rpc.") for name in actual if name.startswith("watchium_rpc.")
    }
    assert bodies == {name.removeprefix("public.") for name in public_functions}
    expected = {
        name: FUNCTION_EXECUTE.get(name.replace("watchium_rpc.", "public.", 1), set())
        if name.startswith("watchium_rpc.")
        else FUNCTION_EXECUTE.get(name, set())
        for name in actual
    }
    mismatched = {
        name: (actual[name], want) for name, want in expected.items() if actual[name] != want
    }
    assert mismatched == {}
    granted_to_public = [name for name, _, public in rows if public]
    assert granted_to_public == []


def test_rpc_schema_usage_only_for_roles_that_call_an_entry_point(conn):
    """USAGE on watchium_rpc is needed to reach a body through its entry point: exactly the roles
    that may execute some public function have it; nobody but the owner may create there."""
    callers = {
        role
        for name, roles in FUNCTION_EXECUTE.items()
        if name.startswith("public.")
        for role in roles
    }
    for role in ROLES:
        usage, create = conn.execute(
            "select pg_catalog.has_schema_privilege(%s, 'watchium_rpc', 'usage'),"
            " pg_catalog.has_schema_privilege(%s, 'watchium_rpc', 'create')",
            (role, role),
        ).fetchone()
        assert (role, usage, create) == (role, role in callers, False)
    public_usage = conn.execute(
        "select pg_catalog.has_schema_privilege('public', 'watchium_rpc', 'usage')"
    ).fetchone()[0]
    assert public_usage is False
