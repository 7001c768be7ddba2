"""Listen to a room's events on plain PostgreSQL (no Supabase Realtime).

Each room has two streams, as on Supabase Realtime:

- ``"room"``: the database's own events (playback, joins, host changes, ...), NOTIFY channel
  ``"watchium:room:<room_id>"`` (Realtime topic ``room:<room_id>``, where members may only
  receive, so nothing on it is forged);
- ``"members"``: what members send each other through ``broadcast_to_room`` (``play``, ``pause``,
  ``seek``, ``chat_message``), channel ``"watchium:room:<room_id>:members"`` (topic
  ``room:<room_id>:members``).

``RoomListener(url, room_id)`` follows the first, ``RoomListener(url, room_id, stream="members")``
the second. ``watchium_private.emit_room_event`` NOTIFYs the stream's channel with
``{event_id, room_id, event, payload, sent_at}`` (or ``{event_id, room_id, event, truncated}``
when the message would not fit the 8000-byte NOTIFY limit) and logs every event in
``watchium_private.room_events``. :class:`RoomListener` turns that into an async stream of
:class:`RoomEvent`::

    async for event in RoomListener(url, "abcdefghij"):
        print(event.event, event.payload)

Who runs it: the app server, with a trusted role (``service_role`` or the database owner).
The log is private; the listener reads it only through the security-definer functions
``watchium_private.read_room_events`` / ``read_room_event``, which are granted to
``service_role`` (grant EXECUTE on them to another server role if yours differs). Clients never
run this: on Supabase they get the same events from Realtime on ``room:<room_id>``.

Reconnecting: when the connection drops, it reconnects with exponential backoff, the seed's
``ResilientChannel``: up to 5 retries, waiting 1 s, 2 s, 4 s, 8 s, 16 s before them (injectable),
then :class:`ListenerGaveUp`. A successful reconnect resets the count.

No loss, no duplicates: after every (re)connect it LISTENs first, then catches up from the log.
``event_id`` is assigned at INSERT, so an event with a smaller id can commit after a larger one;
a plain ``event_id > last_seen`` would miss it. Each logged event carries the id of the
transaction that wrote it (``xact_id``) and each catch-up returns the ``xmin`` of its snapshot:
an event not visible to a catch-up was written by a transaction that was still running (or had
not started), so its ``xact_id`` is ``>=`` that ``xmin``. The next catch-up therefore asks for
``event_id > last_seen or xact_id >= previous xmin`` and drops the ids it already delivered.
Events are delivered in commit order while connected (NOTIFY order) and in ``event_id`` order
within one catch-up. Events older than the ``room_event_retention`` setting (1 hour) are gone
from the log: a listener down for longer than that loses them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

NOTIFY_LIMIT_BYTES = 8000

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


@dataclass(frozen=True)
class RoomEvent:
    """One room event, live (``replayed`` false) or from a catch-up of the log."""

    event_id: int
    room_id: str
    event: str
    payload: dict[str, Any]
    sent_at: str | None = None
    replayed: bool = False
    complete: bool = True  # false only for a truncated notification whose log row had expired


@dataclass(frozen=True)
class ListenerPosition:
    """Where a listener is: pass it back as ``resume_from`` to continue without loss."""

    last_event_id: int
    min_xact_id: int | None


class ListenerGaveUp(ConnectionError):
    """The listener could not reconnect within its retries."""


Sleep = Callable[[float], Awaitable[None]]


class RoomListener:
    """Async stream of one room's events with reconnects and exact catch-up.

    ``stream`` is ``"room"`` (the database's events, the default) or ``"members"`` (member
    broadcasts). ``resume_from`` continues from a saved :class:`ListenerPosition`; without it
    the stream starts with the events committed after the listener first connects.
    """

    def __init__(
        self,
        conninfo: str,
        room_id: str,
        *,
        stream: Stream = "room",
        resume_from: ListenerPosition | None = None,
        max_retries: int = 5,
        initial_delay: float = 1.0,
        sleep: Sleep = asyncio.sleep,
        poll_interval: float = 1.0,
        catch_up_every: int = 1000,
    ) -> None:
        self.channel = channel_for(room_id, stream)
        if len(self.channel.encode()) > 63:
            raise ValueError("room_id is too long for a NOTIFY channel")
        self.conninfo = conninfo
        self.room_id = room_id
        self.stream = stream
        self.max_retries = max_retries
        self.initial_delay = initial_delay
        self.poll_interval = poll_interval
        self.catch_up_every = catch_up_every
        self._sleep = sleep
        self._last_id: int | None = resume_from.last_event_id if resume_from else None
        self._min_xact: int | None = resume_from.min_xact_id if resume_from else None
        self._seen: set[int] = set()
        self._live_since_catch_up = 0
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._closed = False
        self.reconnects = 0
        self.delays: list[float] = []  # every backoff delay waited, for metrics and tests

    # -- public ---------------------------------------------------------------------------------
    @property
    def position(self) -> ListenerPosition | None:
        if self._last_id is None:
            return None
        return ListenerPosition(self._last_id, self._min_xact)

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
        """Yield the room's events until :meth:`close`; reconnect and catch up as needed."""
        while not self._closed:
            conn = await self._connect()
            try:
                for event in await self._catch_up(conn):
                    yield event
                while not self._closed:
                    for event in await self._receive(conn):
                        yield event
                    if self._live_since_catch_up >= self.catch_up_every:
                        for event in await self._catch_up(conn):
                            yield event
            except psycopg.OperationalError:
                if self._closed:
                    return
                await self._drop()
                self.reconnects += 1

    # -- connection -----------------------------------------------------------------------------
    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        """Connect and LISTEN; on failure retry with exponential backoff."""
        attempt = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                await conn.execute(f'listen "{self.channel}"')
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

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            finally:
                self._conn = None

    # -- reading --------------------------------------------------------------------------------
    async def _catch_up(self, conn: psycopg.AsyncConnection[Any]) -> list[RoomEvent]:
        """Read what the log has that this listener may not have delivered yet."""
        cur = await conn.execute(
            "select watchium_private.read_room_events(%s, %s, %s::text::xid8)",
            (
                self.room_id,
                self._last_id,
                None if self._min_xact is None else str(self._min_xact),
            ),
        )
        row = await cur.fetchone()
        assert row is not None
        result: dict[str, Any] = row[0]
        self._min_xact = int(result["snapshot_xmin"])
        self._live_since_catch_up = 0
        if self._last_id is None:  # starting now: remember, deliver nothing
            self._last_id = int(result["last_event_id"] or 0)
            self._seen = {int(i) for i in result["pending_ids"]}
            return []
        fresh: list[RoomEvent] = []
        for e in result["events"]:
            event_id = int(e["event_id"])
            if event_id in self._seen or stream_of(e["event"]) != self.stream:
                continue
            fresh.append(
                RoomEvent(
                    event_id=event_id,
                    room_id=e["room_id"],
                    event=e["event"],
                    payload=e["payload"],
                    sent_at=e["created_at"],
                    replayed=True,
                )
            )
        # Future catch-ups return only ids > last or xact_id >= this xmin, all of which are in
        # this result when visible now; keep exactly those (late notifications dedupe on them).
        self._seen = {int(e["event_id"]) for e in result["events"]}
        # Delivered now or before, or of the other stream: none is needed again.
        self._advance(int(e["event_id"]) for e in result["events"])
        return fresh

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> list[RoomEvent]:
        notes = [n async for n in conn.notifies(timeout=self.poll_interval, stop_after=1)]
        fresh: list[RoomEvent] = []
        for note in notes:
            message = json.loads(note.payload)
            event_id = int(message["event_id"])
            if event_id in self._seen:
                continue
            self._seen.add(event_id)
            self._live_since_catch_up += 1
            payload = message.get("payload")
            complete = True
            if message.get("truncated"):
                cur = await conn.execute(
                    "select watchium_private.read_room_event(%s, %s)", (self.room_id, event_id)
                )
                row = await cur.fetchone()
                full = row[0] if row else None
                payload = full["payload"] if full else {}
                complete = full is not None
            fresh.append(
                RoomEvent(
                    event_id=event_id,
                    room_id=message["room_id"],
                    event=message["event"],
                    payload=payload or {},
                    sent_at=message.get("sent_at"),
                    complete=complete,
                )
            )
        self._advance(e.event_id for e in fresh)
        return fresh

    def _advance(self, ids: Any) -> None:
        for event_id in ids:
            if self._last_id is None or event_id > self._last_id:
                self._last_id = event_id
