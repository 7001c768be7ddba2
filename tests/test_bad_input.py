"""Property-based bad input for every public RPC (hypothesis).

For each function in ``public``, hypothesis draws arguments from strategies chosen by the
argument's SQL type — NaN, ±Infinity, negative and huge numbers, NULLs, empty, huge,
control-character and unicode strings, malformed ids and JSON — and calls it as a random caller
(host, member, stranger, anonymous). Every rejection must be a clear error with a stable
SQLSTATE from the API's list (never an internal error, never a raw constraint violation), and
after every call the database must hold no invalid value.

The default run draws 25 examples per function (``WATCHIUM_HYPOTHESIS_EXAMPLES`` changes it);
the slow suite draws 500 per function.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchium_db.testing import as_user

EXAMPLES = int(os.environ.get("WATCHIUM_HYPOTHESIS_EXAMPLES", "25"))

#: SQLSTATEs a public function may raise for bad input or a refused request.
ALLOWED_SQLSTATES = {"22001", "22023", "28000", "42501", "P0002", "WD409", "WD429"}
#: Raised by PostgreSQL itself while reading an argument of the declared type, before the
#: function runs: malformed JSON (22P02) and a JSON \u0000 escape, which jsonb cannot hold
#: (22P05). Both are stable and name the problem; PostgREST answers them with 400.
ARGUMENT_PARSE_SQLSTATES = {"22P02", "22P05"}

#: Which callers may call which functions (the others get 42501 from the privilege check).
CALLERS = ("host", "member", "stranger", "anon")

PRIVATE_ROOM = "privroom01"
PUBLIC_ROOM = "pubroom001"
APPROVAL_ROOM = "apprroom01"

FIXTURE_SQL = f"""
insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,
                          host_user_id, host_username, is_public) values
  ('{PRIVATE_ROOM}', 'Private', 'a1', 'Anime', 1, 'https://example.com/p', 'host', 'Host', false),
  ('{PUBLIC_ROOM}', 'Public', 'a1', 'Anime', 1, 'https://example.com/q', 'host', 'Host', true);
insert into watchium_private.room_secrets (room_id, access_key) values ('{PRIVATE_ROOM}', '123456');
insert into public.room_members (room_id, user_id, username, is_host) values
  ('{PRIVATE_ROOM}', 'host', 'Host', true),
  ('{PRIVATE_ROOM}', 'member', 'Member', false),
  ('{PUBLIC_ROOM}', 'host', 'Host', true),
  ('{PUBLIC_ROOM}', 'member', 'Member', false);
insert into public.room_queue (room_id, position, anime_id, anime_title, episode_number, video_url,
                               duration, added_by, added_by_username) values
  ('{PRIVATE_ROOM}', 1, 'a1', 'Anime', 2, 'https://example.com/p2', 1440, 'member', 'Member'),
  ('{PUBLIC_ROOM}', 1, 'a1', 'Anime', 2, 'https://example.com/q2', 1440, 'member', 'Member');
insert into public.rooms (room_id, title, anime_id, anime_title, episode_number, video_url,
                          host_user_id, host_username, is_public, join_policy) values
  ('{APPROVAL_ROOM}', 'Approval', 'a1', 'Anime', 1, 'https://example.com/r', 'host', 'Host', true,
   'approval');
insert into public.room_members (room_id, user_id, username, is_host) values
  ('{APPROVAL_ROOM}', 'host', 'Host', true),
  ('{APPROVAL_ROOM}', 'member', 'Member', false);
insert into watchium_private.room_join_requests (room_id, user_id, username) values
  ('{APPROVAL_ROOM}', 'stranger', 'Stranger');
"""

# -------------------------------------------------------------------------------------------
# strategies by SQL type
# -------------------------------------------------------------------------------------------
nasty_text = st.one_of(
    st.just(""),
    st.just(" "),
    st.just("\x00"),  # psycopg refuses NUL before the database sees it; kept to prove it's handled
    st.text(min_size=1, max_size=20),
    st.text(alphabet=st.characters(categories=["Cc"]), min_size=1, max_size=5),
    st.text(min_size=2001, max_size=2100),
    st.sampled_from(
        ["x" * 101, "ABCDEFGHIJ", "abc", "room:1", "'; drop table rooms; --", "🎬" * 30]
    ),
)
ids = st.sampled_from(
    [PRIVATE_ROOM, PUBLIC_ROOM, APPROVAL_ROOM, "nosuchroom", "host", "member", "stranger"]
)
text_values = st.one_of(st.none(), ids, nasty_text, st.from_regex(r"\A[a-z0-9]{10}\Z"))
numeric_values = st.one_of(
    st.none(),
    st.sampled_from(
        [
            Decimal("NaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
            Decimal("-0.01"),
            Decimal("0"),
            Decimal("86400"),
            Decimal("86400.01"),
            Decimal("1e12"),
            Decimal("0.25"),
            Decimal("4.01"),
        ]
    ),
    st.decimals(min_value=-1_000_000, max_value=1_000_000, places=3, allow_nan=False),
)
float_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.5, -1.0, 1e300]),
)
int_values = st.one_of(
    st.none(),
    st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31), 1000001]),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["current_time", "message", "user_id", "event", "x", "time"]),
            children,
            max_size=4,
        ),
    ),
    max_leaves=10,
)
jsonb_values = st.one_of(
    st.none(),
    json_values.map(lambda v: psycopg.types.json.Jsonb(v)),
    st.sampled_from(
        [
            psycopg.types.json.Jsonb({"current_time": "NaN"}),
            psycopg.types.json.Jsonb({"current_time": -1}),
            psycopg.types.json.Jsonb({"current_time": 1e308}),
            psycopg.types.json.Jsonb({"message": "x" * 5000}),
            psycopg.types.json.Jsonb({"message": ""}),
            psycopg.types.json.Jsonb({"message": "hi", "user_id": "someone-else"}),
        ]
    ),
)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "text": text_values,
    "character varying": text_values,
    "numeric": numeric_values,
    "double precision": float_values,
    "real": float_values,
    "integer": int_values,
    "bigint": int_values,
    "smallint": int_values,
    "boolean": st.one_of(st.none(), st.booleans()),
    "jsonb": jsonb_values,
    "json": jsonb_values,
    # Arrays (record_heartbeats): ragged lengths, nulls, empty and too long.
    "text[]": st.one_of(
        st.none(),
        st.lists(st.one_of(st.none(), ids, nasty_text), max_size=6),
        st.just(["m"] * 1001),
    ),
    "numeric[]": st.one_of(st.none(), st.lists(numeric_values, max_size=6)),
    "boolean[]": st.one_of(st.none(), st.lists(st.one_of(st.none(), st.booleans()), max_size=6)),
    "integer[]": st.one_of(st.none(), st.lists(st.one_of(st.none(), int_values), max_size=6)),
}


def function_args(conn: psycopg.Connection[Any], name: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        select a.name, pg_catalog.format_type(a.type, null)
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace,
        unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) with ordinality as a(name, type, i)
        where n.nspname = 'public' and p.proname = %s
        order by a.i
        """,
        (name,),
    ).fetchall()
    return [(arg, type_) for arg, type_ in rows]


def public_functions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        """
        select p.proname from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.prokind = 'f'
          and not exists (select from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
        """
    ).fetchall()
    return {name for (name,) in rows}


INVARIANTS = """
select array_remove(array[
  case when exists (select from public.rooms
                    where current_playback_time = 'NaN' or playback_speed = 'NaN')
       then 'NaN in rooms' end,
  case when exists (select from public.room_members r group by r.room_id
                    having count(*) filter (where r.is_host) <> 1)
       then 'a non-empty room without exactly one host' end,
  case when exists (select from public.rooms r
                    join public.room_members m on m.room_id = r.room_id and m.is_host
                    where r.host_user_id is distinct from m.user_id
                       or r.host_username is distinct from m.username)
       then 'rooms.host_* disagrees with the host member' end,
  case when exists (select from public.comments where user_id is null
                    and not (is_system_message or is_anchor) and deleted_at is null)
       then 'an authorless user comment' end,
  case when exists (select from public.room_queue q group by q.room_id
                    having min(q.position) > 1 or max(q.position) - min(q.position) + 1 <> count(*))
       then 'a queue with a gap in its positions' end,
  case when exists (select from public.rooms r
                    where r.queue_item_id is distinct from (
                      select q.item_id from public.room_queue q
                      where q.room_id = r.room_id and q.position = 0))
       then 'rooms.queue_item_id disagrees with the item at position 0' end,
  case when exists (select from watchium_private.room_secrets s
                    join public.rooms r using (room_id) where r.is_public)
       then 'an access key of a public room' end,
  case when exists (select from watchium_private.room_join_requests q
                    join public.room_members m using (room_id, user_id))
       then 'a join request of a member of its room' end,
  case when exists (select from watchium_private.room_join_requests q
                    join public.rooms r using (room_id)
                    where q.status = 'pending' and watchium_private.room_join_policy(r) <> 'approval')
       then 'a pending join request in a room that needs no approval' end
], null)
"""

#: Every public function and whether hypothesis exercises it here. A new function fails
#: test_every_public_function_is_covered until it is listed.
COVERED = {
    "check_rate_limit",
    "create_room",
    "join_room",
    "leave_room",
    "kick_member",
    "transfer_host",
    "update_room",
    "delete_room",
    "get_room",
    "get_room_access_key",
    "list_public_rooms",
    "post_comment",
    "edit_comment",
    "delete_comment",
    "get_comments",
    "get_or_create_anchor",
    "broadcast_to_room",
    "realtime_health",
    "change_playback_state",
    "seek_to_time",
    "set_playback_speed",
    "bulk_sync_update",
    "record_heartbeat",
    "record_heartbeats",
    "get_room_sync_state",
    "get_room_events",
    "get_room_sync_options",
    "set_room_sync_options",
    "get_room_sync_metrics",
    "record_realtime_metrics",
    "get_realtime_metrics_summary",
    "maintain",
    "install_maintenance_schedule",
    "sync_history_health",
    "forget_user",
    "set_member_role",
    "set_room_permission",
    "get_room_permissions",
    "ban_member",
    "unban_member",
    "mute_member",
    "unmute_member",
    "hide_member_comments",
    "get_room_moderation",
    "add_to_queue",
    "move_queue_item",
    "remove_queue_item",
    "advance_queue",
    "get_queue",
    "report_playback_status",
    "set_wait_opt_out",
    "force_resume",
    "start_ready_check",
    "set_ready",
    "cancel_ready_check",
    "set_room_join_policy",
    "request_to_join",
    "get_join_requests",
    "answer_join_request",
    "withdraw_join_request",
}


def test_every_public_function_is_covered(conn):
    assert public_functions(conn) == COVERED


@pytest.fixture
def bad_input_db(conn):
    conn.execute(FIXTURE_SQL)
    return conn


@pytest.mark.parametrize("function", sorted(COVERED))
def test_bad_input_is_rejected_cleanly(bad_input_db, function):
    exercise(bad_input_db, function, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("function", sorted(COVERED))
def test_bad_input_is_rejected_cleanly_500_examples(bad_input_db, function):
    exercise(bad_input_db, function, max(EXAMPLES, 500))


def exercise(conn: psycopg.Connection[Any], function: str, examples: int) -> None:
    assert function in public_functions(conn), f"public.{function} not found"
    signature = function_args(conn, function)
    arg_strategies = {arg: STRATEGIES[type_] for arg, type_ in signature}
    seen_states: dict[str, int] = {}

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(caller=st.sampled_from(CALLERS), args=st.fixed_dictionaries(arg_strategies))
    def run(caller: str, args: dict[str, Any]) -> None:
        named = ", ".join(f"{a} => %({a})s" for a in args)
        sql = f"select public.{function}({named})"
        role = "anon" if caller == "anon" else "authenticated"
        user = None if caller == "anon" else caller
        with conn.transaction(force_rollback=True):
            with as_user(conn, user, role=role) as c:
                try:
                    with c.transaction():
                        c.execute(sql, args)
                    state = "ok"
                except psycopg.Error as exc:
                    if exc.sqlstate is None:  # refused by the driver (e.g. NUL in a string)
                        assert isinstance(exc, psycopg.DataError), exc
                        state = "driver"
                        return
                    state = exc.sqlstate
                    assert state in ALLOWED_SQLSTATES | ARGUMENT_PARSE_SQLSTATES, (
                        f"public.{function}({json.dumps(args, default=str)[:300]}) as {caller}: "
                        f"{state} {exc}"
                    )
                    assert exc.diag.message_primary, "an error without a message"
                    if state in ARGUMENT_PARSE_SQLSTATES:
                        # ...only while reading an argument, never inside a function body.
                        assert "portal parameter" in (exc.diag.context or ""), exc.diag.context
            # SET LOCAL outlives the released savepoint: back to the owner for the check.
            conn.execute("reset role")
            problems = conn.execute(INVARIANTS).fetchone()
            assert problems is not None and problems[0] == [], problems
        seen_states[state] = seen_states.get(state, 0) + 1

    run()
    assert sum(seen_states.values()) >= 1
