"""The typed client: every public RPC through Session / AsyncSession, and each error mapping."""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool
import pytest

from watchium_db import client as wc
from watchium_db.client import AsyncClient, Client, Session
from watchium_db.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    NotSignedIn,
    RateLimited,
    TransactionInProgress,
    WatchiumError,
)
from watchium_db.testing import make_room

VIDEO = "https://example.com/v.m3u8"


def new_room(s: Session, *, public: bool = True) -> wc.CreatedRoom:
    return s.create_room(
        title="Party", anime_id="a1", anime_title="Anime", episode_number=1,
        video_url=VIDEO, username=(s.user_id or "x").title(), is_public=public,
    )  # fmt: skip


@pytest.fixture
def client(watchium_db_url: str) -> Iterator[Client]:
    with Client(watchium_db_url) as c:
        yield c


def age_presence(conn: psycopg.Connection[Any], room_id: str, seconds: int) -> None:
    """Move heartbeats back so the next one is not throttled (heartbeat_min_interval)."""
    conn.execute(
        "update watchium_private.member_presence set last_heartbeat = last_heartbeat"
        " - make_interval(secs => %s) where room_id = %s",
        (seconds, room_id),
    )


def test_every_public_function_has_one_rpc_spec_with_its_sql_arguments(
    watchium_conn: psycopg.Connection[Any],
) -> None:
    rows = watchium_conn.execute(
        "select p.proname, coalesce(array_to_string(p.proargnames[1:p.pronargs], ' '), '')"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.prokind = 'f'"
        "   and p.prorettype <> 'trigger'::regtype"
        "   and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')"
    ).fetchall()
    in_db = {name: args.split() for name, args in rows}
    specs = {rpc.name: [a for a, _ in rpc.args] for rpc in wc.RPCS}
    assert specs == in_db


def test_every_rpc_has_one_typed_method_for_sync_and_async() -> None:
    methods = {n: m for n, m in vars(wc.RpcMethods).items() if isinstance(m, wc.RpcMethod)}
    assert {m.rpc.name for m in methods.values()} == {rpc.name for rpc in wc.RPCS}
    assert len(methods) == len(wc.RPCS)
    sync, asyn = wc.Session("unused", "u"), wc.AsyncSession("unused", "u")
    for name, method in methods.items():
        assert name == method.rpc.name
        assert not inspect.iscoroutinefunction(getattr(sync, name))
        assert inspect.iscoroutinefunction(getattr(asyn, name))
        assert inspect.signature(getattr(sync, name)) == inspect.signature(getattr(asyn, name))
        assert "self" not in inspect.signature(getattr(sync, name)).parameters
        assert getattr(asyn, name).__doc__ == method.__doc__
    # The methods are written once: neither class defines its own.
    assert not set(methods) & (set(vars(wc.Session)) | set(vars(wc.AsyncSession)))


def test_rooms_through_the_client(client: Client) -> None:
    c = client
    alice, bob, carol = c.as_user("alice"), c.as_user("bob"), c.as_user("carol")
    created = new_room(alice, public=False)
    room_id = created.room.room_id
    assert created.membership.is_host and created.access_key is not None
    assert isinstance(created.room.created_at, datetime)
    assert alice.get_room_access_key(room_id) == created.access_key

    wrong = bob.join_room(room_id, access_key="000000", username="Bob")
    assert (wrong.status, wrong.joined, wrong.room) == ("invalid_access_key", False, None)
    assert wrong.attempts_left is not None and wrong.attempts_left >= 0
    joined = bob.join_room(room_id, access_key=created.access_key, username="Bob")
    assert joined.status == "joined" and joined.membership is not None
    assert joined.membership.user_id == "bob"
    carol.join_room(room_id, access_key=created.access_key, username="Carol")

    details = alice.get_room(room_id)
    assert [m.user_id for m in details.members] == ["alice", "bob", "carol"]
    assert details.is_host and details.access_key == created.access_key

    updated = alice.update_room(room_id, title="Renamed", is_public=True)
    assert updated.room.title == "Renamed" and updated.room.is_public
    page = bob.list_public_rooms(anime_id="a1", limit=5)
    assert [r.room_id for r in page.items] == [room_id] and page.items[0].member_count == 3

    assert alice.kick_member(room_id, "carol").user_id == "carol"
    assert alice.transfer_host(room_id, "bob").host_user_id == "bob"
    left = bob.leave_room(room_id)
    assert (left.status, left.host_user_id) == ("left", "alice")
    assert alice.delete_room(room_id).room_id == room_id
    with pytest.raises(NotFound):
        alice.get_room(room_id)


def test_roles_and_permissions_through_the_client(client: Client) -> None:
    alice, bob, carol = client.as_user("alice"), client.as_user("bob"), client.as_user("carol")
    room_id = new_room(alice).room.room_id
    bob.join_room(room_id, username="Bob")
    carol.join_room(room_id, username="Carol")
    change = alice.set_member_role(room_id, "bob", "co_host")
    assert (change.role, change.previous_role) == ("co_host", "member")
    assert bob.get_room(room_id).members[1].role == "co_host"
    perm = alice.set_room_permission(room_id, "chat", "co_host")
    assert (perm.min_role, perm.previous_min_role, perm.is_default) == ("co_host", "member", False)
    mine = carol.get_room_permissions(room_id)
    assert mine.role == "member"
    by_name = {p.permission: p for p in mine.permissions}
    assert not by_name["chat"].allowed and by_name["comment"].allowed
    assert by_name["chat"].default_min_role == "member"
    assert alice.set_room_permission(room_id, "chat", None).is_default
    with pytest.raises(Forbidden):
        carol.set_member_role(room_id, "bob", "viewer")
    assert bob.kick_member(room_id, "carol").status == "kicked"
    banned = alice.ban_member(room_id, "carol", duration_seconds=60, reason="spoilers")
    assert banned.ends_at is not None and not banned.removed
    muted = alice.mute_member(room_id, "bob", shadow=True)
    assert muted.shadow and muted.ends_at is None
    seen = bob.get_room_moderation(room_id)
    assert seen.bans is not None and seen.bans[0]["user_id"] == "carol"
    assert alice.unmute_member(room_id, "bob").status == "unmuted"
    assert alice.unban_member(room_id, "carol").status == "unbanned"
    assert alice.hide_member_comments(room_id, "carol").hidden == 0
    carol.join_room(room_id, username="Carol")
    assert alice.kick_member(room_id, "carol", ban_seconds=30).banned_until is not None


def test_join_policy_through_the_client(client: Client) -> None:
    alice, bob, carol = client.as_user("alice"), client.as_user("bob"), client.as_user("carol")
    room_id = new_room(alice).room.room_id
    change = alice.set_room_join_policy(room_id, "approval")
    assert isinstance(change, wc.JoinPolicyChange)
    assert (change.join_policy, change.previous_join_policy) == ("approval", "open")
    with pytest.raises(Forbidden):
        bob.join_room(room_id, username="Bob")
    asked = bob.request_to_join(room_id, username="Bob", message="hi")
    assert asked.status == "pending" and isinstance(asked.requested_at, datetime)
    assert not asked.approved
    listed = alice.get_join_requests(room_id)
    assert listed.join_policy == "approval"
    assert [(r.user_id, r.message, r.status) for r in listed.requests] == [("bob", "hi", "pending")]
    assert isinstance(listed.requests[0].created_at, datetime)
    with pytest.raises(Forbidden):
        carol.get_join_requests(room_id)
    assert alice.answer_join_request(room_id, "bob", True).status == "approved"
    again = bob.request_to_join(room_id)
    assert again.approved and isinstance(again.valid_until, datetime)
    assert bob.join_room(room_id, username="Bob").joined
    assert bob.request_to_join(room_id).status == "member"
    carol.request_to_join(room_id, username="Carol")
    assert alice.answer_join_request(room_id, "carol", False).status == "refused"
    refused = carol.request_to_join(room_id)
    assert refused.status == "refused" and isinstance(refused.retry_after, datetime)
    # A refusal stays (with its wait); a pending request can be withdrawn, once.
    assert carol.withdraw_join_request(room_id).withdrawn is False
    dave = client.as_user("dave")
    dave.request_to_join(room_id, username="Dave")
    withdrawal = dave.withdraw_join_request(room_id)
    assert isinstance(withdrawal, wc.JoinRequestWithdrawal) and withdrawal.withdrawn
    assert dave.withdraw_join_request(room_id).withdrawn is False
    assert [r.user_id for r in alice.get_join_requests(room_id).requests] == []
    open_room = new_room(alice).room.room_id
    with pytest.raises(Conflict):
        carol.request_to_join(open_room, username="Carol")  # a room that needs no approval
    assert alice.get_room(room_id).room.join_policy == "approval"


def test_queue_through_the_client(client: Client, watchium_db_url: str) -> None:
    alice, bob = client.as_user("alice"), client.as_user("bob")
    room_id = new_room(alice).room.room_id
    bob.join_room(room_id, username="Bob")
    first = bob.add_to_queue(
        room_id, anime_id="a1", anime_title="Anime", episode_number=2, video_url=VIDEO,
        duration=1420.5,
    )  # fmt: skip
    assert isinstance(first, wc.QueueItem) and first.position == 1 and first.duration == 1420.5
    assert first.added_by == "bob" and isinstance(first.added_at, datetime)
    second = alice.add_to_queue(
        room_id, anime_id="a1", anime_title="Anime", episode_number=3, video_url=VIDEO,
        duration=1400,
    )  # fmt: skip
    moved = alice.move_queue_item(room_id, second.item_id, 1)
    assert [i.item_id for i in moved.items] == [second.item_id, first.item_id]
    advanced = alice.advance_queue(room_id, None)
    assert advanced.item is not None and advanced.item.item_id == second.item_id
    assert advanced.from_item_id is None and advanced.playback["action"] == "episode"
    with pytest.raises(Conflict):
        alice.advance_queue(room_id, None)  # the second click from the same state
    with pytest.raises(Forbidden):
        bob.move_queue_item(room_id, first.item_id, 1)
    queue = bob.get_queue(room_id)
    assert queue.current_item_id == second.item_id and queue.advance_after == 1402
    assert [i.item_id for i in queue.up_next] == [first.item_id]
    left = alice.remove_queue_item(room_id, second.item_id)  # the one playing: advances
    assert left.current_item_id == first.item_id and left.up_next == ()
    with Client(watchium_db_url) as c:
        report = c.service().maintain()
    assert report.queues == {"queues_advanced": 0, "queues_skipped_busy": 0}


def test_comments_through_the_client(client: Client) -> None:
    c = client
    alice = c.as_user("alice")
    room_id = new_room(alice).room.room_id
    anchor = alice.get_or_create_anchor("a1", 1)
    assert anchor.is_anchor and anchor.user_id is None
    posted = alice.post_comment(
        anime_id="a1", episode_number=1, message="hello", username="Alice",
        room_id=room_id, video_timestamp=12.5,
    )  # fmt: skip
    assert (posted.user_id, posted.message, posted.video_timestamp) == ("alice", "hello", 12.5)
    assert alice.edit_comment(posted.id, "hello again").message == "hello again"
    page = alice.get_comments(anime_id="a1", episode_number=1, room_id=room_id, limit=10)
    assert page.items[0].id == posted.id and page.items[0].message == "hello again"
    assert alice.delete_comment(posted.id).id == posted.id
    with pytest.raises(Forbidden):
        c.as_user("mallory").edit_comment(anchor.id, "mine now")


def test_sync_realtime_and_service_rpcs_through_the_client(
    client: Client, watchium_conn: psycopg.Connection[Any]
) -> None:
    room_id = make_room(watchium_conn, host="alice", members=["bob"]).room_id
    c = client
    alice, bob, service = c.as_user("alice"), c.as_user("bob"), c.service()

    played = alice.change_playback_state(room_id, True, 10.0)
    assert (played.action, played.is_playing, played.current_time) == ("play", True, 10.0)
    assert alice.seek_to_time(room_id, 100.0).current_time == 100.0
    assert alice.set_playback_speed(room_id, 1.5).playback_speed == 1.5

    hb = bob.record_heartbeat(room_id, 90.0, True)  # ten seconds behind: the database says so
    assert hb.sync_level == "out_of_sync" and not hb.is_synced and hb.time_difference >= 10
    state = bob.get_room_sync_state(room_id)
    assert state.expected_time >= 100 and state.host_user_id == "alice" and state.me is not None
    assert state.stats["members"] == 2
    assert state.waiting is not None and state.waiting["state"] == "playing"
    assert state.events_position is not None
    pos = state.events_position
    alice.seek_to_time(room_id, 120.0)
    caught = bob.get_room_events(room_id, pos["xact_id"], pos["event_id"], pos["snapshot"])
    assert [(e["event"], e["payload"]["current_time"]) for e in caught.events] == [
        ("playback", 120)
    ]
    assert not caught.more and not caught.held and caught.expired is None
    assert caught.position["event_id"] == caught.events[-1]["event_id"]
    state = bob.get_room_sync_state(room_id)
    age_presence(watchium_conn, room_id, 5)
    caught_up = bob.record_heartbeat(room_id, state.expected_time, True)
    assert caught_up.is_synced  # "Live": the expected position is in sync
    age_presence(watchium_conn, room_id, 5)
    wrong = bob.record_heartbeat(room_id, state.expected_time, True, rtt_ms=80, episode_number=99)
    assert wrong.episode_mismatch and wrong.reason == "wrong_episode" and wrong.rtt_ms == 80
    assert wrong.time_difference is None and wrong.client_time_ignored is False
    metrics = alice.get_room_sync_metrics(room_id)
    assert metrics.room_id == room_id and metrics.members == 2
    options = alice.set_room_sync_options(room_id, {"drift_minor": 3, "rebuffer_timeout": None})
    assert (options.drift_perfect, options.drift_minor, options.rebuffer_timeout) == (0.5, 3, 10)
    assert "rebuffer_timeout" in options.defaults and "drift_minor" not in options.defaults
    assert bob.get_room_sync_options(room_id) == options

    age_presence(watchium_conn, room_id, 5)
    batch = service.record_heartbeats(
        room_id,
        [{"user_id": "bob", "current_time": state.expected_time, "is_playing": True, "rtt_ms": 80}],
    )
    assert (batch.accepted, batch.throttled, batch.not_members) == (1, 0, 0)
    assert batch.results[0].user_id == "bob" and batch.results[0].outcome == "ok"
    assert batch.results[0].is_synced and isinstance(batch.results[0].server_time, datetime)
    assert batch.results[0].rtt_ms == 80 and batch.results[0].episode_mismatch is False

    event_id = bob.broadcast_to_room(room_id, "chat_message", {"message": "hi"})
    stored = watchium_conn.execute(
        "select event, payload ->> 'message' from watchium_private.room_events where event_id = %s",
        (event_id,),
    ).fetchone()
    assert stored == ("chat_message", "hi")

    assert (
        bob.record_realtime_metrics(
            room_id, active_connections=2, total_events=5, avg_latency_ms=20.0, error_rate=0.0
        )
        > 0
    )
    summary = bob.get_realtime_metrics_summary(room_id, 5)
    assert (summary.reporters, summary.total_events) == (1, 5)

    assert bob.check_rate_limit("bob", "app_action", window_minutes=1, max_requests=1) is True
    assert bob.check_rate_limit("bob", "app_action", window_minutes=1, max_requests=1) is False

    report = service.maintain()
    assert isinstance(report.ran_at, datetime) and "stale_members_removed" in report.rooms


def test_errors_map_to_exceptions_by_sqlstate(
    client: Client, watchium_db_url: str, watchium_conn: psycopg.Connection[Any]
) -> None:
    c = client
    alice, bob = c.as_user("alice"), c.as_user("bob")
    room_id = new_room(alice).room.room_id

    with pytest.raises(InvalidInput) as invalid:
        alice.seek_to_time(room_id, math.nan)  # NaN reaches the database's own check
    assert invalid.value.sqlstate == "22023" and "p_time" in invalid.value.message
    assert invalid.value.hint

    with pytest.raises(NotSignedIn) as no_sub:
        Session(watchium_db_url, None, "authenticated").create_room(
            title="t", anime_id="a", anime_title="A", episode_number=1,
            video_url=VIDEO, username="x",
        )  # fmt: skip
    assert no_sub.value.sqlstate == "28000"

    bob.join_room(room_id, username="Bob")
    with pytest.raises(Forbidden) as forbidden:
        bob.seek_to_time(room_id, 5.0)
    assert forbidden.value.sqlstate == "42501"

    with pytest.raises(NotFound) as missing:
        alice.get_room("nosuchroom")
    assert missing.value.sqlstate == "P0002"

    watchium_conn.execute(
        "update watchium_private.rate_limit_rules set max_requests = 1 where action = 'create_room'"
    )
    with pytest.raises(RateLimited) as limited:
        new_room(alice)
    assert limited.value.sqlstate == "WD429" and limited.value.hint

    # No public function raises WD409 on demand; the mapping is checked with a stand-in.
    watchium_conn.execute(
        "create function public.test_conflict() returns void language plpgsql as"
        " $$ begin raise exception 'busy' using errcode = 'WD409', hint = 'Retry.'; end $$;"
        " grant execute on function public.test_conflict() to authenticated"
    )
    with pytest.raises(Conflict) as conflict:
        alice.call("test_conflict")
    assert (conflict.value.sqlstate, conflict.value.hint) == ("WD409", "Retry.")
    assert all(issubclass(e, WatchiumError) for e in (Conflict, RateLimited, NotFound))


def test_anonymous_sessions_are_refused_by_the_grants(client: Client) -> None:
    with pytest.raises(Forbidden) as anon:  # anon has no EXECUTE on any RPC
        client.anonymous().list_public_rooms()
    assert anon.value.sqlstate == "42501" and "list_public_rooms" in anon.value.message


def test_async_client(watchium_db_url: str) -> None:
    async def scenario() -> tuple[str, str, str | None]:
        c = AsyncClient(watchium_db_url)
        alice, bob = c.as_user("alice"), c.as_user("bob")  # the pool opens on first use
        created = await alice.create_room(
            title="Async", anime_id="a1", anime_title="Anime", episode_number=1,
            video_url=VIDEO, username="Alice",
        )  # fmt: skip
        room_id = created.room.room_id
        joined = await bob.join_room(room_id, username="Bob")
        await alice.change_playback_state(room_id, True, 0.0)
        with pytest.raises(Forbidden):
            await bob.change_playback_state(room_id, False)
        with pytest.raises(InvalidInput):
            await alice.seek_to_time(room_id, math.inf)
        async with await psycopg.AsyncConnection.connect(watchium_db_url) as conn:
            shared = AsyncClient(conn).as_user("bob")  # a connection as the source works too
            state = await shared.get_room_sync_state(room_id)
        left = await alice.leave_room(room_id)
        await c.close()
        return joined.status, state.host_user_id or "", left.host_user_id

    assert asyncio.run(scenario()) == ("joined", "alice", "bob")


def _backend_pid(session: Session) -> int:
    with session.transaction() as conn:
        row = conn.execute("select pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_client_holds_a_pool_and_closes_it(watchium_db_url: str, watchium_conn) -> None:
    with Client(watchium_db_url) as c:
        alice = c.as_user("alice")
        first = _backend_pid(alice)
        new_room(alice)
        assert _backend_pid(c.as_user("bob")) == first  # one kept connection, not one per call
    # Closed with the block: its connection ends and the client refuses further calls.
    gone = "select not exists (select from pg_stat_activity where pid = %s)"
    for _ in range(500):  # the server process exits shortly after the client disconnects
        if watchium_conn.execute(gone, (first,)).fetchone() == (True,):
            break
        time.sleep(0.01)
    assert watchium_conn.execute(gone, (first,)).fetchone() == (True,)
    with pytest.raises(psycopg_pool.PoolClosed):
        c.as_user("alice").list_public_rooms()


def test_async_client_holds_a_pool_and_closes_it(watchium_db_url: str) -> None:
    async def scenario() -> tuple[int, int]:
        async with AsyncClient(watchium_db_url) as c:
            pids = []
            for user in ("alice", "bob"):
                async with c.as_user(user).transaction() as conn:
                    cur = await conn.execute("select pg_backend_pid()")
                    row = await cur.fetchone()
                    assert row is not None
                    pids.append(int(row[0]))
        with pytest.raises(psycopg_pool.PoolClosed):
            await c.as_user("alice").list_public_rooms()
        return pids[0], pids[1]

    first, second = asyncio.run(scenario())
    assert first == second


def test_untyped_calls_send_python_floats_as_numeric(client: Client) -> None:
    alice = client.as_user("alice")
    room_id = new_room(alice).room.room_id
    alice.change_playback_state(room_id, False, 1.0)
    state = alice.call_one("seek_to_time", p_room_id=room_id, p_time=42.5)
    assert state["current_time"] == 42.5
    rows = alice.call("set_playback_speed", p_room_id=room_id, p_speed=1.25)
    assert rows[0]["set_playback_speed"]["playback_speed"] == 1.25

    async def via_async() -> Any:
        async with AsyncClient(client_url(client)) as c:
            return await c.as_user("alice").call_one("seek_to_time", p_room_id=room_id, p_time=7.5)

    assert asyncio.run(via_async())["current_time"] == 7.5


def client_url(client: Client) -> str:
    pool = client.source
    assert isinstance(pool, psycopg_pool.ConnectionPool)
    return str(pool.conninfo)


def test_bulk_sync_update_and_service_reports_are_typed(
    client: Client, watchium_conn: psycopg.Connection[Any]
) -> None:
    room_id = make_room(watchium_conn, host="alice", members=["bob"]).room_id
    count = "select count(*) from public.sync_records where room_id = %s"
    before = watchium_conn.execute(count, (room_id,)).fetchone()
    assert client.as_user("alice").bulk_sync_update(room_id, 12.5, "seek") is None
    after = watchium_conn.execute(count, (room_id,)).fetchone()
    assert before is not None and after is not None and after[0] == before[0] + 2
    with pytest.raises(Forbidden):
        client.as_user("bob").bulk_sync_update(room_id, None, "seek")
    with pytest.raises(InvalidInput):
        client.service().bulk_sync_update(room_id, None, "rewind")

    history = client.service().sync_history_health()
    assert isinstance(history, dict) and history
    with pytest.raises(Forbidden):
        client.as_user("alice").sync_history_health()

    health = client.service().realtime_health()
    assert isinstance(health, wc.RealtimeHealth) and isinstance(health.checked_at, datetime)
    assert health.ok == (health.problems == ()) and "publication" in health.raw
    with pytest.raises(Forbidden):
        client.as_user("alice").realtime_health()


def _identity(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "select current_user, coalesce(current_setting('request.jwt.claims', true), '')"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_call_inside_an_open_transaction_is_refused(
    watchium_db_url: str, watchium_conn: psycopg.Connection[Any]
) -> None:
    room_id = make_room(watchium_conn, host="alice").room_id
    with psycopg.connect(watchium_db_url) as conn:  # not autocommit: the first query opens one
        before = _identity(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pytest.raises(TransactionInProgress, match="transaction open"):
            Session(conn, "alice").get_room(room_id)
        with pytest.raises(TransactionInProgress):
            Client(conn).as_user("alice").call("get_room", p_room_id=room_id)
        assert _identity(conn) == before  # role and claims untouched
        conn.rollback()
        # Idle again: the call is its own transaction and leaves nothing behind.
        assert Session(conn, "alice").get_room(room_id).is_host
        assert _identity(conn) == before
        conn.rollback()

    async def via_async() -> tuple[Any, ...]:
        async with await psycopg.AsyncConnection.connect(watchium_db_url) as aconn:
            await aconn.execute("select 1")
            with pytest.raises(TransactionInProgress):
                await AsyncClient(aconn).as_user("alice").get_room(room_id)
            cur = await aconn.execute("select current_user")
            row = await cur.fetchone()
            assert row is not None
            return tuple(row)

    assert asyncio.run(via_async()) == (before[0],)


def test_group_wait_and_ready_check_through_the_client(
    client: Client, watchium_conn: psycopg.Connection[Any]
) -> None:
    room_id = make_room(watchium_conn, host="alice", members=["bob"]).room_id
    alice, bob = client.as_user("alice"), client.as_user("bob")
    alice.change_playback_state(room_id, True, 10.0)
    waiting = bob.report_playback_status(room_id, "buffering", 10.0)
    assert isinstance(waiting, wc.WaitState)
    assert waiting.waiting["state"] == "waiting" and waiting.waiting["blocking"] == ["bob"]
    assert waiting.me is not None and waiting.me["is_blocking"] and not waiting.is_playing
    resumed = alice.force_resume(room_id)
    assert resumed.resumed is True and resumed.is_playing
    assert resumed.playback_updated_at is not None
    opted = bob.set_wait_opt_out(room_id, True)
    assert opted.me is not None and opted.me["wait_opt_out"] is True
    started = alice.start_ready_check(room_id, 30, min_ready=2)
    assert started.waiting["ready_check"]["needed"] == 2
    assert bob.set_ready(room_id, True).waiting["state"] == "scheduled"
    alice.change_playback_state(room_id, False)
    alice.start_ready_check(room_id, 30)
    cancelled = alice.cancel_ready_check(room_id)
    assert cancelled.cancelled is True and cancelled.resumed is None
    assert cancelled.waiting["state"] == "paused" and not cancelled.is_playing
    assert alice.cancel_ready_check(room_id).cancelled is False
    late = bob.set_ready(room_id, True)
    assert late.ready_check_state == "cancelled" and late.answer_counted is False
    assert late.ready_check_state in wc.READY_CHECK_STATES and not late.is_playing
    with pytest.raises(InvalidInput):
        bob.report_playback_status(room_id, "stalled", 1.0)
