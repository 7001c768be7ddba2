"""The typed client: every public RPC through Session / AsyncSession, and each error mapping."""

from __future__ import annotations

import asyncio
import inspect
import math
from datetime import datetime
from typing import Any

import psycopg
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
    WatchiumError,
)
from watchium_db.testing import make_room

VIDEO = "https://example.com/v.m3u8"


def new_room(s: Session, *, public: bool = True) -> wc.CreatedRoom:
    return s.create_room(
        title="Party", anime_id="a1", anime_title="Anime", episode_number=1,
        video_url=VIDEO, username=(s.user_id or "x").title(), is_public=public,
    )  # fmt: skip


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
        "   and has_function_privilege('authenticated', p.oid, 'execute')"
        "    or n.nspname = 'public' and p.proname in ('record_heartbeats', 'maintain', 'forget_user')"
    ).fetchall()
    in_db = {name: args.split() for name, args in rows}
    specs = {rpc.name: [a for a, _ in rpc.args] for rpc in wc.RPCS}
    # bulk_sync_update is an internal broadcast helper kept for the seed's callers.
    in_db.pop("bulk_sync_update", None)
    assert specs == in_db


def test_sync_and_async_sessions_have_the_same_typed_methods() -> None:
    sync = {n: inspect.signature(f) for n, f in vars(wc.Session).items() if not n.startswith("_")}
    asyn = {
        n: inspect.signature(f) for n, f in vars(wc.AsyncSession).items() if not n.startswith("_")
    }
    assert sync == asyn
    assert all(inspect.iscoroutinefunction(getattr(wc.AsyncSession, n)) for n in asyn)
    assert len(sync) == len(wc.RPCS)


def test_rooms_through_the_client(watchium_db_url: str) -> None:
    c = Client(watchium_db_url)
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


def test_comments_through_the_client(watchium_db_url: str) -> None:
    c = Client(watchium_db_url)
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
    watchium_db_url: str, watchium_conn: psycopg.Connection[Any]
) -> None:
    room_id = make_room(watchium_conn, host="alice", members=["bob"]).room_id
    c = Client(watchium_db_url)
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
    age_presence(watchium_conn, room_id, 5)
    caught_up = bob.record_heartbeat(room_id, state.expected_time, True)
    assert caught_up.is_synced  # "Live": the expected position is in sync
    metrics = alice.get_room_sync_metrics(room_id)
    assert metrics.room_id == room_id and metrics.members == 2

    age_presence(watchium_conn, room_id, 5)
    batch = service.record_heartbeats(
        room_id, [{"user_id": "bob", "current_time": state.expected_time, "is_playing": True}]
    )
    assert (batch.accepted, batch.throttled, batch.not_members) == (1, 0, 0)
    assert batch.results[0].user_id == "bob" and batch.results[0].outcome == "ok"
    assert batch.results[0].is_synced and isinstance(batch.results[0].server_time, datetime)

    event_id = bob.broadcast_to_room(room_id, "chat_message", {"message": "hi"})
    stored = watchium_conn.execute(
        "select event, payload ->> 'message' from watchium_private.room_events where event_id = %s",
        (event_id,),
    ).fetchone()
    assert stored == ("chat_message", "hi")

    assert bob.record_realtime_metrics(
        room_id, active_connections=2, total_events=5, avg_latency_ms=20.0, error_rate=0.0
    ) > 0
    summary = bob.get_realtime_metrics_summary(room_id, 5)
    assert (summary.reporters, summary.total_events) == (1, 5)

    assert bob.check_rate_limit("bob", "app_action", window_minutes=1, max_requests=1) is True
    assert bob.check_rate_limit("bob", "app_action", window_minutes=1, max_requests=1) is False

    report = service.maintain()
    assert isinstance(report.ran_at, datetime) and "stale_members_removed" in report.rooms


def test_errors_map_to_exceptions_by_sqlstate(
    watchium_db_url: str, watchium_conn: psycopg.Connection[Any]
) -> None:
    c = Client(watchium_db_url)
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


def test_anonymous_sessions_are_refused_by_the_grants(watchium_db_url: str) -> None:
    with pytest.raises(Forbidden) as anon:  # anon has no EXECUTE on any RPC
        Client(watchium_db_url).anonymous().list_public_rooms()
    assert anon.value.sqlstate == "42501" and "list_public_rooms" in anon.value.message


def test_async_client(watchium_db_url: str) -> None:
    async def scenario() -> tuple[str, str, str | None]:
        c = AsyncClient(watchium_db_url)
        alice, bob = c.as_user("alice"), c.as_user("bob")
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
        return joined.status, state.host_user_id or "", left.host_user_id

    assert asyncio.run(scenario()) == ("joined", "alice", "bob")
