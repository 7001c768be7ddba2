"""The async listener: live events, reconnect after pg_terminate_backend with catch-up (no loss,
no duplicates, also for events that commit out of event_id order), backoff, truncated payloads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest

from watchium_db.listener import ListenerGaveUp, ListenerPosition, RoomEvent, RoomListener
from watchium_db.testing import as_user

ROOM = "lsroom0001"


def _emit(conn: psycopg.Connection[Any], event: str = "room_updated", payload: Any = None) -> int:
    row = conn.execute(
        "select watchium_private.emit_room_event(%s, %s, %s)",
        (ROOM, event, json.dumps(payload or {})),
    ).fetchone()
    assert row is not None
    return int(row[0])


async def _collect(listener: RoomListener, into: list[RoomEvent]) -> None:
    async for event in listener:
        into.append(event)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.fixture
def admin(watchium_server):
    """A connection to the maintenance database, to lock our test database's doors."""
    with psycopg.connect(watchium_server.maintenance_url, autocommit=True) as c:
        yield c


def _doors(admin: psycopg.Connection[Any], dbname: str, open_: bool) -> None:
    admin.execute(f'alter database "{dbname}" allow_connections {str(open_).lower()}')


def _terminate(conn: psycopg.Connection[Any], pid: int | None) -> None:
    assert pid is not None
    assert conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def test_live_events_are_typed_and_start_after_connect(conn, watchium_db_url):
    _emit(conn, "room_updated")  # before the listener: not delivered

    async def scenario() -> list[RoomEvent]:
        got: list[RoomEvent] = []
        listener = RoomListener(watchium_db_url, ROOM, poll_interval=0.05)
        task = asyncio.create_task(_collect(listener, got))
        await _until(lambda: listener.position is not None)
        ids = [_emit(conn, "playback", {"action": "play", "current_time": 1.5})]
        ids.append(_emit(conn, "comment_added", {"message": "m" * 9000}))  # truncated on the wire
        await _until(lambda: len(got) == 2)
        await listener.close()
        await asyncio.wait_for(task, 5)
        assert [e.event_id for e in got] == ids
        return got

    got = asyncio.run(scenario())
    assert got[0].event == "playback" and got[0].payload == {"action": "play", "current_time": 1.5}
    assert not got[0].replayed and got[0].room_id == ROOM
    assert got[1].payload == {"message": "m" * 9000} and got[1].complete


def test_reconnect_after_terminate_catches_up_without_loss_or_duplicates(
    conn, watchium_db_url, admin
):
    async def scenario() -> tuple[list[RoomEvent], list[int], RoomListener]:
        got: list[RoomEvent] = []
        released = asyncio.Event()

        async def sleep(delay: float) -> None:
            await released.wait()

        listener = RoomListener(watchium_db_url, ROOM, poll_interval=0.05, sleep=sleep)
        task = asyncio.create_task(_collect(listener, got))
        await _until(lambda: listener.position is not None)
        ids = [_emit(conn), _emit(conn)]
        await _until(lambda: len(got) == 2)

        # Block new connections to this database so the listener must back off, then kill it.
        db = conn.info.dbname
        _doors(admin, db, False)
        _terminate(conn, listener.backend_pid)
        await _until(lambda: listener.delays != [])
        ids += [_emit(conn, "member_joined", {"user_id": "x"}), _emit(conn, "member_left", {})]
        _doors(admin, db, True)
        released.set()
        await _until(lambda: len(got) == 4)
        ids.append(_emit(conn, "room_deleted"))
        await _until(lambda: len(got) == 5)
        await asyncio.sleep(0.2)  # nothing more may arrive
        await listener.close()
        await asyncio.wait_for(task, 5)
        return got, ids, listener

    got, ids, listener = asyncio.run(scenario())
    assert [e.event_id for e in got] == ids
    assert [e.replayed for e in got] == [False, False, True, True, False]
    assert listener.reconnects == 1 and listener.delays[0] == 1.0


def test_event_committed_out_of_id_order_is_not_lost(conn, watchium_db_url, admin):
    """Transaction A takes event id n and commits late; B takes n+1 and commits first. The
    listener sees B live, runs a catch-up while A is still open, loses its connection, and A
    commits while it is away: the catch-up after the reconnect must still deliver A once."""

    async def scenario() -> tuple[list[RoomEvent], int, int]:
        got: list[RoomEvent] = []
        released = asyncio.Event()

        async def sleep(delay: float) -> None:
            await released.wait()

        listener = RoomListener(
            watchium_db_url, ROOM, poll_interval=0.05, sleep=sleep, catch_up_every=1
        )
        task = asyncio.create_task(_collect(listener, got))
        await _until(lambda: listener.position is not None)
        with psycopg.connect(watchium_db_url) as a:
            late = _emit(a)  # A: open transaction
            early = _emit(conn)  # B: commits now
            assert late < early
            await _until(lambda: len(got) == 1)
            await asyncio.sleep(0.2)  # the catch-up after B's event ran while A was open
            db = conn.info.dbname
            _doors(admin, db, False)
            _terminate(conn, listener.backend_pid)
            await _until(lambda: listener.delays != [])
            a.commit()
        _doors(admin, db, True)
        released.set()
        await _until(lambda: len(got) == 2)
        await asyncio.sleep(0.2)
        await listener.close()
        await asyncio.wait_for(task, 5)
        return got, late, early

    got, late, early = asyncio.run(scenario())
    assert [e.event_id for e in got] == [early, late]
    assert got[1].replayed


def test_resume_from_a_saved_position(conn, watchium_db_url):
    first = _emit(conn)
    position = ListenerPosition(first, None)
    missed = [_emit(conn), _emit(conn, "room_deleted")]

    async def scenario() -> list[RoomEvent]:
        got: list[RoomEvent] = []
        listener = RoomListener(watchium_db_url, ROOM, resume_from=position, poll_interval=0.05)
        task = asyncio.create_task(_collect(listener, got))
        await _until(lambda: len(got) == 2)
        await listener.close()
        await asyncio.wait_for(task, 5)
        assert listener.position is not None and listener.position.last_event_id == missed[-1]
        return got

    got = asyncio.run(scenario())
    assert [e.event_id for e in got] == missed and all(e.replayed for e in got)


def test_backoff_doubles_from_one_second_and_gives_up_after_five_retries():
    waited: list[float] = []

    async def sleep(delay: float) -> None:
        waited.append(delay)

    async def scenario() -> None:
        listener = RoomListener(
            "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", ROOM, sleep=sleep
        )
        with pytest.raises(ListenerGaveUp, match="after 5 retries"):
            async for _ in listener:
                pass

    asyncio.run(scenario())
    assert waited == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_only_trusted_roles_read_the_log(conn):
    event_id = _emit(conn, "room_updated", {"secret_ish": True})
    for role, user in (("anon", None), ("authenticated", "alice")):
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            as_user(conn, user, role=role) as c,
        ):
            c.execute("select watchium_private.read_room_event(%s, %s)", (ROOM, event_id))
    with as_user(conn, None, role="service_role") as c:
        row = c.execute(
            "select watchium_private.read_room_events(%s, 0, null) -> 'events' -> 0 ->> 'event_id'",
            (ROOM,),
        ).fetchone()
    assert row == (str(event_id),)


def test_the_two_streams_each_get_their_own_events(conn, watchium_db_url):
    """stream="room" (default) follows the database's events, stream="members" the member
    broadcasts; live and in catch-up, neither sees the other's."""

    async def scenario() -> tuple[list[RoomEvent], list[RoomEvent], list[RoomEvent]]:
        room_got: list[RoomEvent] = []
        members_got: list[RoomEvent] = []
        room = RoomListener(watchium_db_url, ROOM, poll_interval=0.05)
        members = RoomListener(watchium_db_url, ROOM, stream="members", poll_interval=0.05)
        tasks = [
            asyncio.create_task(_collect(room, room_got)),
            asyncio.create_task(_collect(members, members_got)),
        ]
        await _until(lambda: room.position is not None and members.position is not None)
        _emit(conn, "chat_message", {"message": "hi", "user_id": "bob", "username": "Bob"})
        _emit(conn, "playback", {"action": "pause", "current_time": 3})
        _emit(conn, "seek", {"current_time": 9, "user_id": "alice", "username": "Alice"})
        await _until(lambda: len(room_got) == 1 and len(members_got) == 2)
        saved = room.position
        for listener in (room, members):
            await listener.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        # Catch-up from a saved position skips the other stream's events too.
        _emit(conn, "chat_message", {"message": "later", "user_id": "bob", "username": "Bob"})
        _emit(conn, "room_updated", {"title": "T"})
        resumed: list[RoomEvent] = []
        again = RoomListener(watchium_db_url, ROOM, resume_from=saved, poll_interval=0.05)
        task = asyncio.create_task(_collect(again, resumed))
        await _until(lambda: any(e.event == "room_updated" for e in resumed))
        await asyncio.sleep(0.2)
        await again.close()
        await asyncio.wait_for(task, 5)
        return room_got, members_got, resumed

    room_got, members_got, resumed = asyncio.run(scenario())
    assert [e.event for e in room_got] == ["playback"]
    assert [e.event for e in members_got] == ["chat_message", "seek"]
    # (A resumed listener may replay events of its own stream it had delivered: at least once.)
    assert {e.event for e in resumed} <= {"playback", "room_updated"}
    assert [e.event for e in resumed][-1] == "room_updated" and all(e.replayed for e in resumed)
