"""Listen to a room's events on plain PostgreSQL (no Supabase Realtime).

Each room has two streams, as on Supabase Realtime:

- ``"room"``: the database's own events (playback, joins, host changes, ...), NOTIFY channel
  ``"watchium:room:<room_id>"`` (Realtime topic ``room:<room_id>``, where members may only
  receive, so nothing on it is forged);
- ``"members"``: what members send each other through ``broadcast_to_room`` (``play``, ``pause``,
  ``seek``, ``chat_message``), channel ``"watchium:room:<room_id>:members"`` (topic
  ``room:<room_id>:members``).

``watchium_private.emit_room_event`` logs every event in ``watchium_private.room_events`` and
NOTIFYs its stream's channel. ``RoomListener(url, room_id)`` follows the first stream,
``RoomListener(url, room_id, stream="members")`` the second: it reads the log and turns it into
an async stream of :class:`RoomEvent`; notifications only tell it when to read::

    async for event in RoomListener(url, "abcdefghij", resume_from=saved):
        handle(event)
        save(event.position)       # ideally in the same transaction as handle()'s effects

Who runs it: the app server, with a trusted role (``service_role`` or the database owner).
The log is private; the listener reads it only through the security-definer function
``watchium_private.read_room_events``, granted to ``service_role`` (grant EXECUTE on it to
another server role if yours differs). Clients never run this: on Supabase they get the same
events from Realtime on ``room:<room_id>``.

Delivery guarantee (docs/realtime.md, "Server-side listener"):

* Every event carries its :class:`ListenerPosition` ``(xact_id, event_id)``. Positions only
  grow: the listener yields events in position order and never yields an event whose position
  is at or below one it yielded before, in this process or in one resumed from a saved position.
* At least once: a consumer that saves ``event.position`` after handling the event, and resumes
  from the last saved position (``resume_from=``), sees every event at least once; after a crash
  between handling and saving, that one event again. Exactly once: a consumer that saves the
  position in the same database transaction as the event's effects (and resumes from it) handles
  each event exactly once. Save the position of each event, not of a batch: the stream has no
  batches, and the listener's own :attr:`RoomListener.position` is that of the last event yielded.
* How: an event is read only once every transaction older than its own has ended (its
  ``xact_id`` is below the reading snapshot's xmin), so no event can later appear before one
  already read. The cost: an open write transaction (anywhere on the server) holds back events
  of younger transactions until it ends; they are delayed, never lost.
* Trimmed: events older than the ``room_event_retention`` setting (1 hour) are deleted by
  maintenance, which records the highest deleted position per room. Resuming from a position
  below it raises :class:`EventsExpired` instead of silently skipping what is gone; resume from
  its ``expired_through`` to continue after the gap knowingly.

Reconnecting: when the connection drops (a network error, a server restart), it reconnects with
exponential backoff, the seed's ``ResilientChannel``: up to 5 retries, waiting 1 s, 2 s, 4 s, 8 s,
16 s before them (injectable), then :class:`ListenerGaveUp`. A successful reconnect resets the
count, and reading resumes from the last event yielded.

LISTEN needs a session: behind a pooler in transaction mode (pgbouncer, Supabase's pooler on port
6543) the LISTEN stays on a server connection the listener no longer holds and notifications never
arrive. After every connect the listener sends a probe NOTIFY from a second connection and waits
for it (``session_probe_timeout``); when it does not arrive it raises
:class:`ListenerNeedsSession`. Connect the listener directly or through session pooling.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

#: Connections the listener opens: autocommit, no server-side prepared statements.
CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": None}


Stream = Literal["room", "members"]

#: Event types members send through ``broadcast_to_room``; they travel on the "members" stream
#: (``watchium_private.room_event_topic`` in SQL routes the same types).
MEMBER_EVENTS = frozenset({"play", "pause", "seek", "chat_message"})


def channel_for(room_id: str, stream: Stream = "room") -> str:
    """The NOTIFY channel of a room's stream: its database events or its member broadcasts."""
    if stream == "members":
        return f"watchium:room:{room_id}:members"
    if stream != "room":
        raise ValueError(f"stream must be 'room' or 'members', not {stream!r}")
    return f"watchium:room:{room_id}"


def stream_of(event: str) -> Stream:
    """The stream an event type travels on."""
    return "members" if event in MEMBER_EVENTS else "room"


@dataclass(frozen=True, order=True)
class ListenerPosition:
    """A point in a room's event log, after the event ``(xact_id, event_id)``.

    Positions are totally ordered and each event's is greater than every earlier event's. Store
    ``str(position)`` (``"<xact_id>:<event_id>"``) and pass it (or the object) back as
    ``resume_from`` to continue with the events after it.
    """

    xact_id: int
    event_id: int

    def __str__(self) -> str:
        return f"{self.xact_id}:{self.event_id}"

    @classmethod
    def parse(cls, text: str) -> ListenerPosition:
        """The position written by ``str(position)``."""
        xact, sep, event = text.partition(":")
        if not sep or not xact.isdigit() or not event.isdigit():
            raise ValueError(f"not a listener position: {text!r}")
        return cls(int(xact), int(event))


@dataclass(frozen=True)
class RoomEvent:
    """One room event. ``position`` is where a consumer that has handled it stands now."""

    event_id: int
    room_id: str
    event: str
    payload: dict[str, Any]
    position: ListenerPosition
    sent_at: str | None = None
    #: Read in the catch-up right after a (re)connect, not on a notification.
    replayed: bool = False


class ListenerGaveUp(ConnectionError):
    """The listener could not reconnect within its retries."""


class ListenerNeedsSession(ConnectionError):
    """LISTEN does not work on this connection: notifications sent to it never arrived.

    Usually a pooler in transaction mode (pgbouncer ``pool_mode = transaction``, Supabase's
    pooler on port 6543): connect the listener directly or through session pooling.
    """


class EventsExpired(LookupError):
    """Events after the position were trimmed from the log before this listener read them.

    ``position``: where the listener stood; ``expired_through``: the highest position deleted
    (resume from it to continue after the gap, knowing events are missing).
    """

    def __init__(
        self, room_id: str, position: ListenerPosition, expired_through: ListenerPosition
    ) -> None:
        super().__init__(
            f"events of room {room_id} after position {position} were trimmed from the log"
            f" (up to {expired_through}, room_event_retention) before they were read"
        )
        self.room_id = room_id
        self.position = position
        self.expired_through = expired_through


Sleep = Callable[[float], Awaitable[None]]


class RoomListener:
    """Async stream of one room's events, in position order, with reconnects.

    ``stream`` is ``"room"`` (the database's events, the default) or ``"members"`` (member
    broadcasts); both share the log's positions, and a listener moves past the other stream's
    events without yielding them.
    ``resume_from`` continues after a saved :class:`ListenerPosition` (or its text). Without it
    the stream starts at the xmin of the listener's first snapshot: every event committed after
    the listener connected, and also those of transactions younger than the oldest one still
    running then (so possibly a few committed just before).
    """

    def __init__(
        self,
        conninfo: str,
        room_id: str,
        *,
        stream: Stream = "room",
        resume_from: ListenerPosition | str | None = None,
        max_retries: int = 5,
        initial_delay: float = 1.0,
        sleep: Sleep = asyncio.sleep,
        poll_interval: float = 1.0,
        batch_size: int = 1000,
        session_probe_timeout: float = 5.0,
    ) -> None:
        self.channel = channel_for(room_id, stream)
        if len(self.channel.encode()) > 63:
            raise ValueError("room_id is too long for a NOTIFY channel")
        self.stream = stream
        if isinstance(resume_from, str):
            resume_from = ListenerPosition.parse(resume_from)
        self.conninfo = conninfo
        self.room_id = room_id
        self.max_retries = max_retries
        self.initial_delay = initial_delay
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.session_probe_timeout = session_probe_timeout
        self._sleep = sleep
        self._position: ListenerPosition | None = resume_from
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._closed = False
        self.reconnects = 0
        self.delays: list[float] = []  # every backoff delay waited, for metrics and tests

    # -- public ---------------------------------------------------------------------------------
    @property
    def position(self) -> ListenerPosition | None:
        """The position of the last event yielded (or the starting point); None before the
        first connect of a listener started without ``resume_from``."""
        return self._position

    @property
    def backend_pid(self) -> int | None:
        """The server process of the current connection (None while disconnected)."""
        return self._conn.info.backend_pid if self._conn is not None else None

    async def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def __aiter__(self) -> AsyncIterator[RoomEvent]:
        return self.events()

    async def events(self) -> AsyncIterator[RoomEvent]:
        """Yield the room's events until :meth:`close`; reconnect and catch up as needed.

        Raises :class:`EventsExpired`, :class:`ListenerNeedsSession` or
        :class:`ListenerGaveUp`."""
        while not self._closed:
            conn = await self._connect()
            replayed = True
            try:
                while not self._closed:
                    events, more, last = await self._read(conn, replayed)
                    for event in events:
                        self._position = event.position  # handed over: the next one follows it
                        yield event
                    if last is not None:  # past the other stream's events of the batch too
                        self._position = last
                    if more:
                        continue
                    replayed = False
                    await self._wait(conn)
            except psycopg.OperationalError:
                if self._closed:
                    return
                await self._drop()
                self.reconnects += 1

    # -- connection -----------------------------------------------------------------------------
    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        """Connect, LISTEN and check that notifications arrive; retry with backoff."""
        attempt = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, **CONNECTION_KWARGS)
                try:
                    await conn.execute(f'listen "{self.channel}"')
                    await self._check_session(conn)
                except BaseException:
                    await conn.close()
                    raise
            except psycopg.OperationalError as exc:
                if attempt >= self.max_retries:
                    raise ListenerGaveUp(
                        f"could not connect to listen to room {self.room_id} "
                        f"after {self.max_retries} retries: {exc}"
                    ) from exc
                delay = self.initial_delay * 2**attempt
                self.delays.append(delay)
                attempt += 1
                await self._sleep(delay)
                continue
            self._conn = conn
            return conn

    async def _check_session(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """NOTIFY a private channel from another connection and wait for it on this one."""
        probe = f"watchium:probe:{secrets.token_hex(8)}"
        await conn.execute(f'listen "{probe}"')
        other = await psycopg.AsyncConnection.connect(self.conninfo, **CONNECTION_KWARGS)
        async with other:
            await other.execute("select pg_catalog.pg_notify(%s, '')", (probe,), prepare=False)
        deadline = time.monotonic() + self.session_probe_timeout
        arrived = False
        while not arrived and (left := deadline - time.monotonic()) > 0:
            # Run each notifies() to its end: it holds the connection until then.
            async for note in conn.notifies(timeout=left, stop_after=1):
                arrived = note.channel == probe
        if arrived:
            await conn.execute(f'unlisten "{probe}"')
            return
        raise ListenerNeedsSession(
            f"LISTEN does not work on this connection: a notification sent to it did not"
            f" arrive within {self.session_probe_timeout} s. A pooler in transaction mode"
            " (pgbouncer pool_mode=transaction, Supabase's pooler on port 6543) cannot carry"
            " LISTEN; connect the listener directly or through session pooling."
        )

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            finally:
                self._conn = None

    # -- reading --------------------------------------------------------------------------------
    async def _read(
        self, conn: psycopg.AsyncConnection[Any], replayed: bool
    ) -> tuple[list[RoomEvent], bool, ListenerPosition | None]:
        """The stream's next events after the position, whether more are ready, and the
        position of the last event read (of either stream)."""
        after = self._position
        cur = await conn.execute(
            "select watchium_private.read_room_events(%s, %s::text::xid8, %s, %s)",
            (
                self.room_id,
                None if after is None else str(after.xact_id),
                None if after is None else after.event_id,
                self.batch_size,
            ),
            prepare=False,
        )
        row = await cur.fetchone()
        assert row is not None
        result: dict[str, Any] = row[0]
        if after is None:  # starting now: after every transaction that has already ended
            self._position = ListenerPosition(int(result["snapshot_xmin"]), 0)
            return [], False, None
        expired = result["expired"]
        if expired is not None:
            raise EventsExpired(
                self.room_id,
                after,
                ListenerPosition(int(expired["xact_id"]), int(expired["event_id"])),
            )
        events = [
            RoomEvent(
                event_id=int(e["event_id"]),
                room_id=e["room_id"],
                event=e["event"],
                payload=e["payload"],
                position=ListenerPosition(int(e["xact_id"]), int(e["event_id"])),
                sent_at=e["created_at"],
                replayed=replayed,
            )
            for e in result["events"]
            if stream_of(e["event"]) == self.stream
        ]
        read = result["events"]
        last = (
            ListenerPosition(int(read[-1]["xact_id"]), int(read[-1]["event_id"])) if read else None
        )
        return events, bool(result["more"]), last

    async def _wait(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Until a notification arrives or ``poll_interval`` passes (events held back for an
        older transaction are read on the next poll)."""
        async for _ in conn.notifies(timeout=self.poll_interval, stop_after=1):
            pass  # any notification means: read the log
