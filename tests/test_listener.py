"""The async listener: live events, reconnect after pg_terminate_backend with catch-up (no loss,
no duplicates, also for events that commit out of event_id order), backoff, large payloads, and
its guarantee: positions per event, exactly once for a consumer that stores the position with its
effects (crash mid-batch), resuming without re-delivery, and trimming reported, not skipped."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from watchium_db.listener import (
    EventsExpired,
    ListenerGaveUp,
    ListenerPosition,
    RoomEvent,
    RoomListener,
)
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


def _settled(conn: psycopg.Connection[Any], event_id: int) -> bool:
    """Every transaction up to the event's own has ended (nothing older is still running)."""
    row = conn.execute(
        "select xact_id < pg_snapshot_xmin(pg_current_snapshot())"
        " from watchium_private.room_events where event_id = %s",
        (event_id,),
    ).fetchone()
    return row == (True,)


def test_live_events_are_typed_and_start_after_connect(conn, watchium_db_url):
    before = _emit(conn, "room_updated")  # settled before the listener starts: not delivered
    for _ in range(500):
        if _settled(conn, before):
            break
        time.sleep(0.01)
    assert _settled(conn, before)

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
    assert got[1].payload == {"message": "m" * 9000}
    assert got[0].position < got[1].position and got[1].position.event_id == got[1].event_id


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


def test_event_committed_out_of_id_order_is_not_lost_nor_delivered_twice(
    conn, watchium_db_url, admin
):
    """Transaction A takes event id n and commits late; B takes n+1 and commits first. B is held
    back while A is open (A's event would otherwise come after a position already handed out);
    the listener loses its connection, A commits while it is away, and after the reconnect both
    arrive once, in position order. Resuming from the first one's position yields only the
    second: nothing the first consumer handled comes again."""

    async def scenario() -> tuple[list[RoomEvent], int, int, list[RoomEvent]]:
        got: list[RoomEvent] = []
        released = asyncio.Event()

        async def sleep(delay: float) -> None:
            await released.wait()

        listener = RoomListener(watchium_db_url, ROOM, poll_interval=0.05, sleep=sleep)
        task = asyncio.create_task(_collect(listener, got))
        await _until(lambda: listener.position is not None)
        with psycopg.connect(watchium_db_url) as a:
            late = _emit(a)  # A: open transaction
            early = _emit(conn)  # B: commits now
            assert late < early
            await asyncio.sleep(0.3)  # several polls while A is open: B must wait
            assert got == []
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

        again: list[RoomEvent] = []
        resumed = RoomListener(
            watchium_db_url, ROOM, resume_from=str(got[0].position), poll_interval=0.05
        )
        task = asyncio.create_task(_collect(resumed, again))
        await _until(lambda: len(again) == 1)
        await asyncio.sleep(0.2)
        await resumed.close()
        await asyncio.wait_for(task, 5)
        return got, late, early, again

    got, late, early, again = asyncio.run(scenario())
    assert [e.event_id for e in got] == [late, early]
    assert got[0].position < got[1].position
    assert [e.event_id for e in again] == [early]


def _position_of(conn: psycopg.Connection[Any], event_id: int) -> ListenerPosition:
    row = conn.execute(
        "select xact_id::text::bigint, event_id from watchium_private.room_events"
        " where event_id = %s",
        (event_id,),
    ).fetchone()
    assert row is not None
    return ListenerPosition(int(row[0]), int(row[1]))


def test_resume_from_a_saved_position(conn, watchium_db_url):
    first = _emit(conn)
    position = _position_of(conn, first)
    missed = [_emit(conn), _emit(conn, "room_deleted")]

    async def scenario() -> list[RoomEvent]:
        got: list[RoomEvent] = []
        listener = RoomListener(watchium_db_url, ROOM, resume_from=position, poll_interval=0.05)
        task = asyncio.create_task(_collect(listener, got))
        await _until(lambda: len(got) == 2)
        await listener.close()
        await asyncio.wait_for(task, 5)
        assert listener.position is not None and listener.position.event_id == missed[-1]
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
            "select watchium_private.read_room_events(%s, '0'::xid8, 0) -> 'events' -> 0 ->> 'event_id'",
            (ROOM,),
        ).fetchone()
    assert row == (str(event_id),)


def test_a_consumer_storing_positions_with_its_effects_handles_each_event_exactly_once(
    conn, watchium_db_url
):
    """Twelve events wait in the log and arrive in one read. The consumer stores each event's
    effect and position in one transaction and crashes after the fifth; a new process resumes
    from the stored position. Every event is handled exactly once: nothing after the crash is
    lost (a position per batch would have skipped the rest), nothing before it comes again."""
    conn.execute(
        "create table handled (event_id bigint primary key);"
        " create table consumer_position (id int primary key, position text not null)"
    )
    start = _position_of(conn, _emit(conn))
    conn.execute("insert into consumer_position values (1, %s)", (str(start),))
    ids = [_emit(conn, "room_updated", {"n": n}) for n in range(12)]

    class Crash(Exception):
        pass

    async def consume(crash_after: int | None) -> int:
        with psycopg.connect(watchium_db_url) as store:
            saved = store.execute("select position from consumer_position").fetchone()
            store.commit()
            assert saved is not None
            listener = RoomListener(watchium_db_url, ROOM, resume_from=saved[0], poll_interval=0.05)
            handled = 0
            try:
                async with asyncio.timeout(10):
                    async for event in listener:
                        with store.transaction():  # effect and position together
                            store.execute("insert into handled values (%s)", (event.event_id,))
                            store.execute(
                                "update consumer_position set position = %s",
                                (str(event.position),),
                            )
                        handled += 1
                        if handled == crash_after:
                            raise Crash
                        if event.event_id == ids[-1]:
                            break
            except Crash:
                pass
            finally:
                await listener.close()
            return handled

    assert asyncio.run(consume(crash_after=5)) == 5
    assert asyncio.run(consume(crash_after=None)) == 7
    rows = conn.execute("select event_id from handled order by event_id").fetchall()
    assert [r[0] for r in rows] == ids


def test_trimmed_events_after_a_saved_position_raise_events_expired(conn, watchium_db_url):
    """Maintenance trims the log past a saved position: resuming says so (EventsExpired with
    the highest trimmed position) instead of skipping silently; resuming from that position
    continues with what is left. Trimming only what the consumer already handled is no
    error."""
    handled = _position_of(conn, _emit(conn))
    older = [_emit(conn), _emit(conn)]
    kept = _emit(conn, "room_deleted")
    conn.execute(
        "update watchium_private.room_events set created_at = now() - interval '2 hours'"
        " where event_id <= %s",
        (older[-1],),
    )
    result = conn.execute("select watchium_private.expire_room_events()").fetchone()
    assert result is not None and result[0]["deleted"] >= 3
    recorded = conn.execute(
        "select event_id from watchium_private.room_events_expired where room_id = %s", (ROOM,)
    ).fetchone()
    assert recorded == (older[-1],)

    async def resume(position: ListenerPosition) -> list[RoomEvent]:
        got: list[RoomEvent] = []
        listener = RoomListener(watchium_db_url, ROOM, resume_from=position, poll_interval=0.05)
        try:
            async with asyncio.timeout(10):
                async for event in listener:
                    got.append(event)
                    if event.event_id == kept:
                        break
        finally:
            await listener.close()
        return got

    with pytest.raises(EventsExpired) as expired:
        asyncio.run(resume(handled))
    assert expired.value.position == handled
    assert expired.value.expired_through == _position_after(conn, older[-1], recorded)
    assert [e.event_id for e in asyncio.run(resume(expired.value.expired_through))] == [kept]

    # A consumer that had handled everything trimmed is not told anything.
    assert [e.event_id for e in asyncio.run(resume(expired.value.expired_through))] == [kept]


def _position_after(conn: psycopg.Connection[Any], event_id: int, recorded: Any) -> Any:
    row = conn.execute(
        "select xact_id::text::bigint, event_id from watchium_private.room_events_expired"
        " where room_id = %s",
        (ROOM,),
    ).fetchone()
    assert row is not None and row[1] == event_id and recorded[0] == event_id
    return ListenerPosition(int(row[0]), int(row[1]))


def test_the_two_streams_each_get_their_own_events(conn, watchium_db_url):
    """stream="room" (default) follows the database's events, stream="members" the member
    broadcasts; live and after resuming, neither sees the other's, and a resumed listener
    yields nothing it had delivered."""

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
        saved = room_got[-1].position
        for listener in (room, members):
            await listener.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        # Resuming from a saved position skips the other stream's events too.
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
    assert [e.event for e in resumed] == ["room_updated"] and resumed[0].replayed


def _restart_server(admin: psycopg.Connection[Any]) -> None:
    """Restart the test server with an immediate (crash) shutdown; pg_ctl reuses its options."""
    from watchium_db import local

    row = admin.execute("select current_setting('data_directory')").fetchone()
    assert row is not None
    data_dir = Path(row[0])
    argv = [
        str(local.find_bindir() / "pg_ctl"),
        "restart",
        "-D",
        str(data_dir),
        "-m",
        "immediate",
        "-w",
    ]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", pwd.getpwuid(data_dir.stat().st_uid).pw_name, "--", *argv]
    # Output to a log file, not to pipes: the restarted postmaster would hold them open.
    argv += ["-l", str(data_dir / "restart.log")]
    subprocess.run(
        argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120
    )


@pytest.mark.slow
def test_server_restart_loses_and_repeats_nothing(watchium_server, watchium_db_url, admin):
    """The server goes down hard (immediate shutdown) while the listener is connected and comes
    back; events committed before, during the outage and after are each yielded once, in
    position order."""
    if watchium_server.backend != "local":
        pytest.skip("needs a server these tests started themselves (to restart it)")

    def emit(event: str) -> int:
        with psycopg.connect(watchium_db_url, autocommit=True) as c:
            c.execute("set synchronous_commit = on")  # acknowledged means durable
            return _emit(c, event)

    async def scenario() -> tuple[list[RoomEvent], list[int], RoomListener]:
        got: list[RoomEvent] = []

        async def sleep(delay: float) -> None:
            await asyncio.sleep(0.2)

        listener = RoomListener(
            watchium_db_url, ROOM, poll_interval=0.05, sleep=sleep, max_retries=100
        )
        task = asyncio.create_task(_collect(listener, got))
        await _until(lambda: listener.position is not None)
        ids = [emit("room_updated")]
        await _until(lambda: len(got) == 1)
        ids.append(emit("member_joined"))  # committed just before the crash: maybe not seen live
        await asyncio.to_thread(_restart_server, admin)
        ids.append(emit("member_left"))
        await _until(lambda: len(got) == 3, timeout=60)
        ids.append(emit("room_deleted"))
        await _until(lambda: len(got) == 4)
        await asyncio.sleep(0.3)  # nothing more may arrive
        await listener.close()
        await asyncio.wait_for(task, 5)
        return got, ids, listener

    got, ids, listener = asyncio.run(scenario())
    assert [e.event_id for e in got] == ids
    assert listener.reconnects >= 1
    assert [e.position for e in got] == sorted(e.position for e in got)
