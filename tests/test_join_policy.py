"""A room's join policy: open, access key, or approval by a moderator (revisions 0026, 0027).

Each policy, the approval flow from both sides, the cap, bans, key rotation, two moderators
answering at once, and what a client calling only RPCs might try: approving itself, reading
others' requests, or getting into an approval room with the key alone.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import errors

from watchium_db.testing import as_user, make_room

Conn = psycopg.Connection[Any]

REQUEST = "select public.request_to_join(%s, %s, %s, %s)"
ANSWER = "select public.answer_join_request(%s, %s, %s)"
LIST = "select public.get_join_requests(%s)"
POLICY = "select public.set_room_join_policy(%s, %s)"


def rpc(conn: Conn, user: str, sql: str, *params: Any) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def sqlstate(conn: Conn, user: str, sql: str, *params: Any) -> str | None:
    try:
        rpc(conn, user, sql, *params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def join(conn: Conn, user: str, room_id: str, key: str | None = None) -> Any:
    return rpc(conn, user, "select public.join_room(%s, %s, %s)", room_id, key, user.title())


def request(
    conn: Conn, user: str, room_id: str, message: str | None = None, key: str | None = None
) -> Any:
    return rpc(conn, user, REQUEST, room_id, user.title(), message, key)


def members(conn: Conn, room_id: str) -> set[str]:
    rows = conn.execute("select user_id from public.room_members where room_id = %s", (room_id,))
    return {u for (u,) in rows.fetchall()}


def events(conn: Conn, room_id: str, name: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select payload from watchium_private.room_events where room_id = %s and event = %s"
        " order by event_id",
        (room_id, name),
    ).fetchall()
    return [p for (p,) in rows]


def approval_room(conn: Conn, *, private: bool = False, members_: tuple[str, ...] = ("cora",)):
    """hana hosts, cora is a co-host (approve_joins by default), mio a member."""
    room = make_room(conn, host="hana", members=(*members_, "mio"), private=private)
    rpc(conn, "hana", "select public.set_member_role(%s, 'cora', 'co_host')", room.room_id)
    assert rpc(conn, "hana", POLICY, room.room_id, "approval")["join_policy"] == "approval"
    return room


# Policies -----------------------------------------------------------------------------------


def test_existing_and_new_rooms_follow_their_visibility(conn):
    public = make_room(conn, host="hana")
    private = make_room(conn, host="hana", private=True)
    policies = dict(
        conn.execute(
            "select room_id, watchium_private.room_join_policy(r) from public.rooms as r"
        ).fetchall()
    )
    assert policies == {public.room_id: "open", private.room_id: "key"}
    assert conn.execute(
        "select count(*) from public.rooms where join_policy is not null"
    ).fetchone() == (0,)
    assert join(conn, "ren", public.room_id)["status"] == "joined"
    assert (
        join(conn, "ren", private.room_id, "000000" if private.access_key != "000000" else "1" * 6)[
            "status"
        ]
        == "invalid_access_key"
    )
    assert join(conn, "ren", private.room_id, private.access_key)["status"] == "joined"


def test_open_is_for_public_rooms_and_key_for_private_ones(conn):
    public = make_room(conn, host="hana")
    private = make_room(conn, host="hana", private=True)
    assert sqlstate(conn, "hana", POLICY, public.room_id, "key") == "22023"
    assert sqlstate(conn, "hana", POLICY, private.room_id, "open") == "22023"
    assert rpc(conn, "hana", POLICY, public.room_id, "open")["join_policy"] == "open"
    assert rpc(conn, "hana", POLICY, private.room_id, "key")["join_policy"] == "key"
    # Changing visibility carries an explicit open or key along (any writer: a trigger).
    rpc(conn, "hana", "select public.update_room(%s, p_is_public => false)", public.room_id)
    conn.execute("update public.rooms set is_public = true where room_id = %s", (private.room_id,))
    rows = dict(
        conn.execute(
            "select room_id, join_policy from public.rooms where room_id in (%s, %s)",
            (public.room_id, private.room_id),
        ).fetchall()
    )
    assert rows == {public.room_id: "key", private.room_id: "open"}
    # The constraint holds for every writer.
    with pytest.raises(errors.CheckViolation):
        conn.execute(
            "update public.rooms set join_policy = 'key' where room_id = %s", (private.room_id,)
        )
    with pytest.raises(errors.CheckViolation):
        conn.execute(
            "update public.rooms set join_policy = 'closed' where room_id = %s", (private.room_id,)
        )


def test_setting_the_policy_needs_update_room_and_tells_the_room(conn):
    room = approval_room(conn)
    rid = room.room_id
    assert sqlstate(conn, "cora", POLICY, rid, "open") == "42501"  # co-host: update_room is host's
    assert sqlstate(conn, "mio", POLICY, rid, "open") == "42501"
    assert sqlstate(conn, "stranger", POLICY, rid, "open") == "42501"  # public room: not a member
    assert events(conn, rid, "room_updated") == [{"join_policy": "approval"}]
    # A room that lowers update_room to co_host delegates it.
    rpc(conn, "hana", "select public.set_room_permission(%s, 'update_room', 'co_host')", rid)
    result = rpc(conn, "cora", POLICY, rid, None)
    assert result == {"room_id": rid, "join_policy": "open", "previous_join_policy": "approval",
                      "requests_dropped": 0}  # fmt: skip
    # Setting the policy in force again is no change and no event.
    rpc(conn, "cora", POLICY, rid, "open")
    assert events(conn, rid, "room_updated") == [
        {"join_policy": "approval"},
        {"join_policy": "open"},
    ]


def test_an_approval_room_refuses_join_room_and_names_request_to_join(conn):
    room = approval_room(conn)
    with pytest.raises(errors.InsufficientPrivilege, match="call request_to_join") as caught:
        join(conn, "ren", room.room_id)
    assert "does not admit" in (caught.value.diag.message_hint or "")
    assert "ren" not in members(conn, room.room_id)
    # Members stay members: joining again is already_member.
    assert join(conn, "mio", room.room_id)["status"] == "already_member"


def test_the_key_does_not_bypass_approval_in_a_private_room(conn):
    room = approval_room(conn, private=True)
    with pytest.raises(errors.InsufficientPrivilege, match="call request_to_join"):
        join(conn, "ren", room.room_id, room.access_key)
    # Without the right key, the room still answers as a missing room would.
    wrong = "000000" if room.access_key != "000000" else "111111"
    assert join(conn, "ren", room.room_id, wrong)["status"] == "invalid_access_key"
    assert join(conn, "ren", "zzzzzzzzzz", wrong)["status"] == "invalid_access_key"


# The approval flow --------------------------------------------------------------------------


def test_request_accept_join_once(conn):
    room = approval_room(conn)
    rid = room.room_id
    first = request(conn, "ren", rid, "hi, I am Mio's friend")
    assert first["status"] == "pending" and first["room_id"] == rid
    assert request(conn, "ren", rid, "again")["status"] == "pending"  # idempotent: nothing changes
    assert events(conn, rid, "join_requested") == [{"user_id": "ren", "username": "Ren"}]
    listed = rpc(conn, "cora", LIST, rid)
    assert listed["join_policy"] == "approval"
    assert [
        (r["user_id"], r["username"], r["message"], r["status"]) for r in listed["requests"]
    ] == [("ren", "Ren", "hi, I am Mio's friend", "pending")]

    assert rpc(conn, "cora", ANSWER, rid, "ren", True) == {
        "room_id": rid, "user_id": "ren", "status": "approved"}  # fmt: skip
    assert events(conn, rid, "join_request_answered") == [{"user_id": "ren", "answered_by": "cora"}]
    assert request(conn, "ren", rid)["status"] == "approved"
    assert "ren" not in members(conn, rid)  # accepting does not add: the user joins when ready

    joined = join(conn, "ren", rid)
    assert joined["status"] == "joined" and joined["membership"]["role"] == "member"
    # The same rows a join always makes: presence, the join record, the system comment.
    presence = conn.execute(
        "select count(*) from watchium_private.member_presence where room_id = %s and user_id = 'ren'",
        (rid,),
    ).fetchone()
    assert presence == (1,)
    assert [e["user_id"] for e in events(conn, rid, "member_joined")][-1] == "ren"
    # The acceptance was consumed: after leaving, the user has to ask again.
    rpc(conn, "ren", "select public.leave_room(%s)", rid)
    with pytest.raises(errors.InsufficientPrivilege, match="request_to_join"):
        join(conn, "ren", rid)
    assert request(conn, "ren", rid)["status"] == "pending"


def test_a_member_asking_is_told_so(conn):
    room = approval_room(conn)
    assert request(conn, "mio", room.room_id) == {"status": "member", "room_id": room.room_id}


def test_an_accepted_user_needs_no_key_and_a_rotation_changes_nothing(conn):
    room = approval_room(conn, private=True)
    rid = room.room_id
    assert request(conn, "ren", rid, key=room.access_key)["status"] == "pending"
    new_key = rpc(conn, "hana", "select public.update_room(%s, p_rotate_access_key => true)", rid)[
        "access_key"
    ]
    assert new_key
    # The pending request survives the rotation; asking again needs no key.
    assert request(conn, "ren", rid)["status"] == "pending"
    rpc(conn, "cora", ANSWER, rid, "ren", True)
    rpc(conn, "hana", "select public.update_room(%s, p_rotate_access_key => true)", rid)
    assert join(conn, "ren", rid)["status"] == "joined"


def test_refusal_is_told_only_to_the_requester_when_it_asks_again(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid, "please")
    assert rpc(conn, "cora", ANSWER, rid, "ren", False)["status"] == "refused"
    assert rpc(conn, "cora", LIST, rid)["requests"] == []
    # The room's event does not say how it was answered; the message is erased.
    assert events(conn, rid, "join_request_answered") == [{"user_id": "ren", "answered_by": "cora"}]
    stored = conn.execute(
        "select status, message from watchium_private.room_join_requests where room_id = %s", (rid,)
    ).fetchall()
    assert stored == [("refused", None)]
    again = request(conn, "ren", rid, "pretty please")
    assert again["status"] == "refused" and again["retry_after"]
    assert len(events(conn, rid, "join_requested")) == 1  # no new request, nobody told
    with pytest.raises(errors.InsufficientPrivilege, match="request_to_join") as caught:
        join(conn, "ren", rid)
    assert caught.value.diag.message_hint == "Your request was refused."
    # Once the wait is over, a new request may be made.
    conn.execute(
        "update watchium_private.room_join_requests set answered_at = now() - interval '2 hours'"
        " where room_id = %s",
        (rid,),
    )
    assert request(conn, "ren", rid, "third time")["status"] == "pending"


def test_a_request_is_answered_once(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid)
    rpc(conn, "cora", ANSWER, rid, "ren", True)
    assert sqlstate(conn, "hana", ANSWER, rid, "ren", False) == "WD409"
    assert sqlstate(conn, "hana", ANSWER, rid, "nobody", True) == "P0002"
    request(conn, "kai", rid)
    rpc(conn, "hana", ANSWER, rid, "kai", False)
    assert sqlstate(conn, "cora", ANSWER, rid, "kai", True) == "P0002"


def answer_at_once(url: str, room_id: str, user: str) -> dict[str, str | None]:
    """hana accepts and cora refuses user's request at the same moment: SQLSTATE or None each."""
    barrier = threading.Barrier(2)
    results: dict[str, str | None] = {}

    def answer(moderator: str, accept: bool) -> None:
        with psycopg.connect(url, autocommit=True) as c:
            barrier.wait()
            try:
                rpc(c, moderator, ANSWER, room_id, user, accept)
                results[moderator] = None
            except psycopg.Error as exc:
                results[moderator] = exc.sqlstate

    threads = [threading.Thread(target=answer, args=("hana", True)),
               threading.Thread(target=answer, args=("cora", False))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_moderators_answering_at_once_give_one_outcome(watchium_db_url, conn):
    room = approval_room(conn)
    rid = room.room_id
    for round_ in range(4):
        user = f"new{round_}"
        request(conn, user, rid)
        results = answer_at_once(watchium_db_url, rid, user)
        assert sorted(results.values(), key=str) in ([None, "P0002"], [None, "WD409"]), results
        winner = "hana" if results["hana"] is None else "cora"
        status = conn.execute(
            "select status from watchium_private.room_join_requests where room_id = %s and user_id = %s",
            (rid, user),
        ).fetchone()
        assert status == (("approved",) if winner == "hana" else ("refused",))
        assert len(events(conn, rid, "join_request_answered")) == round_ + 1


WITHDRAW = "select public.withdraw_join_request(%s)"


def at_once(url: str, calls: list[tuple[str, str, tuple[Any, ...]]]) -> dict[str, Any]:
    """Each (user, sql, params) on its own connection, started together: result or SQLSTATE."""
    barrier = threading.Barrier(len(calls))
    results: dict[str, Any] = {}

    def call(who: str, sql: str, params: tuple[Any, ...]) -> None:
        with psycopg.connect(url, autocommit=True) as c:
            barrier.wait()
            try:
                results[who] = rpc(c, who, sql, *params)
            except psycopg.Error as exc:
                results[who] = exc.sqlstate

    threads = [threading.Thread(target=call, args=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_requester_withdraws_a_pending_request(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid, "hello")
    assert rpc(conn, "ren", WITHDRAW, rid) == {"room_id": rid, "withdrawn": True}
    assert events(conn, rid, "join_request_withdrawn") == [{"user_id": "ren"}]
    assert rpc(conn, "cora", LIST, rid)["requests"] == []
    # Nothing left to answer, and withdrawing again changes nothing (no second event).
    assert sqlstate(conn, "cora", ANSWER, rid, "ren", True) == "P0002"
    assert rpc(conn, "ren", WITHDRAW, rid) == {"room_id": rid, "withdrawn": False}
    assert len(events(conn, rid, "join_request_withdrawn")) == 1
    # Asking again is a new request.
    assert request(conn, "ren", rid)["status"] == "pending"


def test_withdrawing_frees_a_place_under_the_per_user_cap(conn):
    conn.execute(
        "update watchium_private.settings set value = '1' where key = 'max_join_requests_per_user'"
    )
    rooms = [approval_room(conn).room_id for _ in range(2)]
    request(conn, "ren", rooms[0])
    assert sqlstate(conn, "ren", REQUEST, rooms[1], "Ren", None, None) == "WD409"
    rpc(conn, "ren", WITHDRAW, rooms[0])
    assert request(conn, "ren", rooms[1])["status"] == "pending"


def test_an_unused_acceptance_can_be_withdrawn_but_a_refusal_stays(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid)
    rpc(conn, "cora", ANSWER, rid, "ren", True)
    assert rpc(conn, "ren", WITHDRAW, rid)["withdrawn"] is True
    with pytest.raises(errors.InsufficientPrivilege, match="request_to_join"):
        join(conn, "ren", rid)  # the acceptance went with the request
    # A refusal is what makes the user wait before asking again: it is not withdrawn.
    request(conn, "kai", rid)
    rpc(conn, "cora", ANSWER, rid, "kai", False)
    assert rpc(conn, "kai", WITHDRAW, rid) == {"room_id": rid, "withdrawn": False}
    assert request(conn, "kai", rid)["status"] == "refused"
    # Only the caller's own request: another user's call withdraws nothing of ren's or mio's.
    request(conn, "ren", rid)
    assert rpc(conn, "mio", WITHDRAW, rid)["withdrawn"] is False
    assert [r["user_id"] for r in rpc(conn, "cora", LIST, rid)["requests"]] == ["ren"]


def test_a_withdrawal_and_an_answer_at_once_give_one_outcome(watchium_db_url, conn):
    room = approval_room(conn)
    rid = room.room_id
    for round_ in range(4):
        user = f"late{round_}"
        request(conn, user, rid)
        results = at_once(watchium_db_url, [(user, WITHDRAW, (rid,)),
                                             ("cora", ANSWER, (rid, user, True))])  # fmt: skip
        row = conn.execute(
            "select status from watchium_private.room_join_requests where room_id = %s and user_id = %s",
            (rid, user),
        ).fetchone()
        # Withdrawn first: the answer finds nothing. Answered first: the acceptance is withdrawn.
        # Either way nothing is left, and the withdrawal says it withdrew.
        assert results[user] == {"room_id": rid, "withdrawn": True}, results
        assert results["cora"] in ("P0002", {"room_id": rid, "user_id": user, "status": "approved"})
        assert row is None


def test_withdrawing_checks_its_argument_and_is_rate_limited(conn):
    with pytest.raises(errors.InvalidParameterValue, match="p_room_id"):
        rpc(conn, "ren", WITHDRAW, "NOT A ROOM")
    with pytest.raises(errors.StringDataRightTruncation, match="p_room_id"):
        rpc(conn, "ren", WITHDRAW, "x" * 41)
    room = approval_room(conn)
    for _ in range(20):
        rpc(conn, "ren", WITHDRAW, room.room_id)
    assert sqlstate(conn, "ren", WITHDRAW, room.room_id) == "WD429"


def test_leaving_approval_drops_waiting_requests_and_keeps_acceptances(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid)
    request(conn, "kai", rid)
    rpc(conn, "cora", ANSWER, rid, "kai", True)
    assert rpc(conn, "hana", POLICY, rid, "open")["requests_dropped"] == 1
    assert sqlstate(conn, "ren", REQUEST, rid, "Ren", None, None) == "WD409"  # just join
    assert join(conn, "ren", rid)["status"] == "joined"
    assert join(conn, "kai", rid)["status"] == "joined"
    assert conn.execute("select count(*) from watchium_private.room_join_requests").fetchone() == (
        0,
    )


def test_an_acceptance_lapses(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid)
    rpc(conn, "cora", ANSWER, rid, "ren", True)
    conn.execute(
        "update watchium_private.room_join_requests set answered_at = now() - interval '2 days'"
        " where room_id = %s",
        (rid,),
    )
    with pytest.raises(errors.InsufficientPrivilege, match="request_to_join"):
        join(conn, "ren", rid)
    assert rpc(conn, "cora", LIST, rid)["requests"] == []
    assert request(conn, "ren", rid)["status"] == "pending"


def test_a_new_request_needs_a_username_and_checks_its_message(conn):
    room = approval_room(conn)
    rid = room.room_id
    assert sqlstate(conn, "ren", REQUEST, rid, None, None, None) == "22023"
    assert sqlstate(conn, "ren", REQUEST, rid, "Ren", "x" * 201, None) == "22023"
    assert sqlstate(conn, "ren", REQUEST, rid, "Ren", "a\u202eb", None) == "22023"
    assert sqlstate(conn, "ren", REQUEST, rid, "System", None, None) == "22023"
    assert conn.execute("select count(*) from watchium_private.room_join_requests").fetchone() == (
        0,
    )


# Caps and rate limits -----------------------------------------------------------------------


def test_the_per_room_cap_counts_waiting_and_accepted_requests(conn):
    conn.execute(
        "update watchium_private.settings set value = '2' where key = 'max_join_requests_per_room'"
    )
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "u1", rid)
    request(conn, "u2", rid)
    with pytest.raises(psycopg.Error, match="max_join_requests_per_room") as caught:
        request(conn, "u3", rid)
    assert caught.value.sqlstate == "WD409"
    rpc(conn, "cora", ANSWER, rid, "u1", True)  # accepted: still holds its place until used
    assert sqlstate(conn, "u3", REQUEST, rid, "U3", None, None) == "WD409"
    join(conn, "u1", rid)
    rpc(conn, "cora", ANSWER, rid, "u2", False)  # refused: no place held
    assert request(conn, "u3", rid)["status"] == "pending"
    assert request(conn, "u4", rid)["status"] == "pending"
    assert sqlstate(conn, "u5", REQUEST, rid, "U5", None, None) == "WD409"


def test_one_user_has_few_requests_waiting_across_rooms(conn):
    conn.execute(
        "update watchium_private.settings set value = '2' where key = 'max_join_requests_per_user'"
    )
    rooms = [approval_room(conn).room_id for _ in range(3)]
    request(conn, "ren", rooms[0])
    request(conn, "ren", rooms[1])
    with pytest.raises(psycopg.Error, match="max_join_requests_per_user") as caught:
        request(conn, "ren", rooms[2])
    assert caught.value.sqlstate == "WD409"
    assert request(conn, "ren", rooms[0])["status"] == "pending"  # asking again is no new request
    rpc(conn, "cora", ANSWER, rooms[0], "ren", True)  # answered: no longer waiting
    assert request(conn, "ren", rooms[2])["status"] == "pending"


def test_concurrent_requests_of_one_user_never_pass_its_cap(watchium_db_url, conn):
    conn.execute(
        "update watchium_private.settings set value = '3' where key = 'max_join_requests_per_user'"
    )
    rooms = [make_room(conn, host=f"host{i}").room_id for i in range(8)]
    for i, rid in enumerate(rooms):
        rpc(conn, f"host{i}", POLICY, rid, "approval")
    barrier = threading.Barrier(len(rooms))
    states: list[str | None] = []
    lock = threading.Lock()

    def worker(rid: str) -> None:
        with psycopg.connect(watchium_db_url, autocommit=True) as c:
            barrier.wait()
            state = sqlstate(c, "ren", REQUEST, rid, "Ren", None, None)
        with lock:
            states.append(state)

    threads = [threading.Thread(target=worker, args=(rid,)) for rid in rooms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(states, key=str) == [None] * 3 + ["WD409"] * 5
    waiting = conn.execute(
        "select count(*) from watchium_private.room_join_requests where user_id = 'ren'"
    ).fetchone()
    assert waiting == (3,)


def test_request_to_join_is_rate_limited(conn):
    conn.execute(
        "update watchium_private.rate_limit_rules set max_requests = 3 where action = 'request_to_join'"
    )
    room = approval_room(conn)
    for _ in range(3):
        request(conn, "ren", room.room_id)
    assert sqlstate(conn, "ren", REQUEST, room.room_id, "Ren", None, None) == "WD429"


# Bans ---------------------------------------------------------------------------------------


def test_a_ban_deletes_the_request_and_refuses_asking_again(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid)
    rpc(conn, "cora", ANSWER, rid, "ren", True)
    rpc(conn, "cora", "select public.ban_member(%s, 'ren', 3600, 'spam')", rid)
    assert conn.execute("select count(*) from watchium_private.room_join_requests").fetchone() == (
        0,
    )
    with pytest.raises(errors.InsufficientPrivilege, match="banned from room") as caught:
        request(conn, "ren", rid)
    assert caught.value.diag.message_hint == "Reason: spam"
    with pytest.raises(errors.InsufficientPrivilege, match="banned from room"):
        join(conn, "ren", rid)


def test_a_ban_written_directly_hides_the_request_from_moderators(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid)
    conn.execute(
        "insert into watchium_private.room_bans (room_id, user_id) values (%s, 'ren')", (rid,)
    )
    assert rpc(conn, "cora", LIST, rid)["requests"] == []
    assert sqlstate(conn, "cora", ANSWER, rid, "ren", True) == "P0002"


def test_forget_user_deletes_the_requests(conn):
    room = approval_room(conn)
    request(conn, "ren", room.room_id, "my name is Ren")
    with as_user(conn, None, role="service_role") as c:
        result = c.execute("select public.forget_user('ren')").fetchone()
    assert result is not None and result[0]["join_requests_deleted"] == 1
    assert conn.execute("select count(*) from watchium_private.room_join_requests").fetchone() == (
        0,
    )


# Attacks by a client that only calls RPCs ---------------------------------------------------


def test_a_requester_cannot_approve_itself_or_read_the_list(conn):
    room = approval_room(conn)
    rid = room.room_id
    request(conn, "ren", rid, "secret note")
    assert sqlstate(conn, "ren", ANSWER, rid, "ren", True) == "42501"
    assert sqlstate(conn, "ren", LIST, rid) == "42501"
    # Members without approve_joins neither.
    assert sqlstate(conn, "mio", ANSWER, rid, "ren", True) == "42501"
    assert sqlstate(conn, "mio", LIST, rid) == "42501"
    assert sqlstate(conn, "ren", POLICY, rid, "open") == "42501"
    # The message is in no event and no table a client may read.
    assert "secret note" not in str(events(conn, rid, "join_requested"))
    with as_user(conn, "ren") as c, pytest.raises(errors.InsufficientPrivilege):
        c.execute("select * from watchium_private.room_join_requests")
    with as_user(conn, "ren") as c, pytest.raises(errors.InsufficientPrivilege):
        c.execute(
            "insert into watchium_private.room_join_requests (room_id, user_id, username, status,"
            " answered_at) values (%s, 'ren', 'Ren', 'approved', now())",
            (rid,),
        )
    with as_user(conn, "ren") as c, pytest.raises(errors.InsufficientPrivilege):
        c.execute("update public.rooms set join_policy = null where room_id = %s", (rid,))
    with pytest.raises(errors.InsufficientPrivilege):
        join(conn, "ren", rid)


def test_a_private_approval_room_tells_a_stranger_nothing(conn):
    room = approval_room(conn, private=True)
    rid, missing = room.room_id, "zzzzzzzzzz"
    wrong = "000000" if room.access_key != "000000" else "111111"
    # Without a key: the same 22023 as a missing room.
    for target in (rid, missing):
        with pytest.raises(errors.InvalidParameterValue) as caught:
            request(conn, "ren", target)
        assert (
            str(caught.value.diag.message_primary)
            == "p_access_key must be the room's 6-digit access key"
        )
    # With a wrong key: the same invalid_access_key answer, counted.
    answers = [request(conn, "ren", target, key=wrong) for target in (rid, missing)]
    assert [a["status"] for a in answers] == ["invalid_access_key"] * 2
    assert answers[0]["attempts_left"] == answers[1]["attempts_left"] + 1
    # The other functions answer as for a missing room.
    for sql, args in ((LIST, ()), (ANSWER, ("ren", True)), (POLICY, ("approval",))):
        states = {sqlstate(conn, "ren", sql, target, *args) for target in (rid, missing)}
        assert states == {"P0002"}, sql
    assert conn.execute("select count(*) from watchium_private.room_join_requests").fetchone() == (
        0,
    )
    # With the key, the request is made.
    assert request(conn, "ren", rid, key=room.access_key)["status"] == "pending"


def test_a_request_to_a_room_that_needs_no_approval_is_refused(conn):
    public = make_room(conn, host="hana")
    assert sqlstate(conn, "ren", REQUEST, public.room_id, "Ren", None, None) == "WD409"
    private = make_room(conn, host="hana", private=True)
    assert (
        sqlstate(conn, "ren", REQUEST, private.room_id, "Ren", None, private.access_key) == "WD409"
    )
    assert conn.execute("select count(*) from watchium_private.room_join_requests").fetchone() == (
        0,
    )


def test_bad_arguments_name_themselves(conn):
    room = approval_room(conn)
    rid = room.room_id
    with pytest.raises(errors.InvalidParameterValue, match="p_policy"):
        rpc(conn, "hana", POLICY, rid, "closed")
    with pytest.raises(errors.InvalidParameterValue, match="p_accept"):
        rpc(conn, "hana", ANSWER, rid, "ren", None)
    with pytest.raises(errors.InvalidParameterValue, match="p_user_id"):
        rpc(conn, "hana", ANSWER, rid, "", True)
    with pytest.raises(errors.InvalidParameterValue, match="p_room_id"):
        rpc(conn, "hana", LIST, "NOT-A-ROOM")
