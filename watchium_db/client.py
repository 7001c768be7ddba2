"""A small typed client for watchium-db's SQL functions, acting as a given user.

Every call is one transaction that sets the caller's identity exactly as PostgREST does
(transaction-local ``request.jwt.claims`` and ``set local role``), calls one SQL function and
returns its result. Nothing here re-implements logic of the database: authority, validation,
rate limits and sync computations all happen in SQL; the client only carries values and maps
errors to :mod:`watchium_db.errors` by SQLSTATE.

Results are frozen dataclasses: they add no dependency (pydantic would be one more for every
app), they are typed for mypy, and the database has already validated every value, so there is
nothing left for a validation library to do. Each keeps the whole jsonb in ``raw``.

Every public function is described once in the RPC table below (``RPCS``: name, SQL argument
types, result parser). :class:`Session` and :class:`AsyncSession` carry one thin typed method per
RPC; arguments drop the SQL ``p_`` prefix, and arguments left as None take the SQL default.

    client = Client("postgresql://…")               # a URL, a psycopg connection or a pool
    alice = client.as_user("alice")                 # .anonymous(), .service() (service_role)
    room = alice.create_room(title="Friday", anime_id="frieren", anime_title="Frieren",
                             episode_number=1, video_url="https://…", username="Alice")
    alice.change_playback_state(room.room.room_id, True, 0.0)
    state = await AsyncClient(url).as_user("bob").get_room_sync_state(room.room.room_id)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from watchium_db.errors import from_database_error

Row = dict[str, Any]


class _SyncPool(Protocol):
    def connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]: ...


class _AsyncPool(Protocol):
    def connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...


def claims_for(user_id: str | None, role: str, extra: Mapping[str, Any] | None = None) -> str:
    """The JWT claims PostgREST would set for this caller, as JSON text."""
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims["sub"] = user_id
    claims.update(extra or {})
    return json.dumps(claims)


ROLES = ("anon", "authenticated", "service_role")


def _call_sql(function: str, args: Mapping[str, Any]) -> str:
    if not function.replace("_", "").isalnum():
        raise ValueError(f"not a function name: {function!r}")
    named = ", ".join(f"{name} => %({name})s" for name in args)
    return f"select * from public.{function}({named})"


class Caller:
    """Calls watchium-db functions as one user (or anonymously, or as service_role)."""

    def __init__(
        self,
        source: psycopg.Connection[Any] | _SyncPool | str,
        user_id: str | None,
        role: str = "authenticated",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self._source = source
        self.user_id = user_id
        self.role = role

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if isinstance(self._source, str):
            with psycopg.connect(self._source) as conn:
                yield conn
        elif isinstance(self._source, psycopg.Connection):
            yield self._source
        else:
            with self._source.connection() as conn:
                yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction acting as this caller; identity ends with it."""
        with self._connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(
                        "select pg_catalog.set_config('request.jwt.claims', %s, true)",
                        (claims_for(self.user_id, self.role),),
                    )
                    conn.execute(f"set local role {self.role}")  # one of ROLES, checked above
                    yield conn
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None):
                    raise from_database_error(exc) from exc
                raise

    def call(self, function: str, **args: Any) -> list[Row]:
        """Call ``public.<function>`` with named arguments; return its rows as dicts."""
        with self.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_call_sql(function, args), args)
            return cur.fetchall()

    def call_one(self, function: str, **args: Any) -> Any:
        """Call a function that returns one value (a scalar or jsonb)."""
        rows = self.call(function, **args)
        if not rows:
            return None
        (value,) = rows[0].values() if len(rows[0]) == 1 else (rows[0],)
        return value


class AsyncCaller:
    """The asyncio form of :class:`Caller`."""

    def __init__(
        self,
        source: psycopg.AsyncConnection[Any] | _AsyncPool | str,
        user_id: str | None,
        role: str = "authenticated",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self._source = source
        self.user_id = user_id
        self.role = role

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if isinstance(self._source, str):
            async with await psycopg.AsyncConnection.connect(self._source) as conn:
                yield conn
        elif isinstance(self._source, psycopg.AsyncConnection):
            yield self._source
        else:
            async with self._source.connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "select pg_catalog.set_config('request.jwt.claims', %s, true)",
                        (claims_for(self.user_id, self.role),),
                    )
                    await conn.execute(f"set local role {self.role}")
                    yield conn
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None):
                    raise from_database_error(exc) from exc
                raise

    async def call(self, function: str, **args: Any) -> list[Row]:
        async with self.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_call_sql(function, args), args)
            return await cur.fetchall()

    async def call_one(self, function: str, **args: Any) -> Any:
        rows = await self.call(function, **args)
        if not rows:
            return None
        (value,) = rows[0].values() if len(rows[0]) == 1 else (rows[0],)
        return value


# ---------------------------------------------------------------------------------------------
# Typed results. Each is built from the function's jsonb by field name; ``raw`` keeps the whole
# object, so a key added by a later revision is never lost (and never needs a client release).
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")


def _ts(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _build(cls: type[T], data: Mapping[str, Any], **nested: Callable[[Any], Any]) -> T:
    """Fill ``cls``'s fields from ``data`` by name; timestamps parsed, nested values converted."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name == "raw":
            kwargs["raw"] = dict(data)
            continue
        value = data.get(f.name)
        if value is not None and f.name in nested:
            value = nested[f.name](value)
        elif value is not None and "datetime" in str(f.type):
            value = _ts(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Room:
    """A row of public.rooms (``member_count`` only in list_public_rooms)."""

    room_id: str
    title: str
    anime_id: str
    anime_title: str
    episode_number: int
    video_url: str
    source_id: str | None
    host_user_id: str | None
    host_username: str | None
    is_public: bool
    is_playing: bool
    current_playback_time: float
    playback_speed: float
    playback_updated_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    last_activity: datetime | None
    member_count: int | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Room:
        return _build(cls, data)


@dataclass(frozen=True)
class Member:
    """A row of public.room_members."""

    room_id: str
    user_id: str
    username: str
    avatar_url: str | None
    is_host: bool
    is_synced: bool
    current_playback_time: float
    joined_at: datetime | None
    last_heartbeat: datetime | None
    updated_at: datetime | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        return _build(cls, data)


def _members(items: list[Mapping[str, Any]]) -> tuple[Member, ...]:
    return tuple(Member.from_json(m) for m in items)


@dataclass(frozen=True)
class Comment:
    """A row of public.comments (thread anchors and system messages included)."""

    id: int
    anime_id: str
    episode_number: int
    room_id: str | None
    user_id: str | None
    username: str
    avatar_url: str | None
    message: str
    parent_id: int | None
    video_timestamp: float | None
    is_anchor: bool
    is_system_message: bool
    created_at: datetime | None
    updated_at: datetime | None
    #: Set on a tombstone: a deleted comment kept (with an empty message) for its replies.
    deleted_at: datetime | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comment:
        return _build(cls, data)


@dataclass(frozen=True)
class CreatedRoom:
    """create_room: the room, the host's membership and (private rooms only) the access key."""

    room: Room
    membership: Member
    access_key: str | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class JoinResult:
    """join_room: status 'joined', 'already_member' or 'invalid_access_key' (a result, not an
    error, so the counted attempt commits; ``attempts_left`` then says how many remain)."""

    status: str
    room_id: str | None
    room: Room | None
    membership: Member | None
    attempts_left: int | None
    raw: Mapping[str, Any] = _raw()

    @property
    def joined(self) -> bool:
        return self.status in ("joined", "already_member")


@dataclass(frozen=True)
class LeaveResult:
    """leave_room: the new host (None when the room is now empty)."""

    status: str
    room_id: str
    host_user_id: str | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class KickResult:
    status: str
    room_id: str
    user_id: str
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class TransferResult:
    room_id: str
    host_user_id: str
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class UpdatedRoom:
    """update_room: the room after the change; ``access_key`` when it was made private or the
    key was rotated."""

    room: Room
    access_key: str | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class Deleted:
    """delete_room / delete_comment: status 'deleted' and the id (room_id or comment id).

    ``tombstone`` (delete_comment only): the comment had replies, so it stays as a tombstone
    (``deleted_at`` set, empty message) and the replies keep their thread."""

    status: str
    room_id: str | None = None
    id: int | None = None
    tombstone: bool | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RoomDetails:
    """get_room: the room as the caller may see it (``access_key`` for the host only)."""

    room: Room
    members: tuple[Member, ...]
    member_count: int
    is_member: bool
    is_host: bool
    access_key: str | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RoomPage:
    """list_public_rooms: a page; pass ``next_cursor`` back for the next one."""

    items: tuple[Room, ...]
    next_cursor: str | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class CommentPage:
    """get_comments: newest first; pass ``next_cursor`` back for older ones."""

    items: tuple[Comment, ...]
    next_cursor: str | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class PlaybackState:
    """change_playback_state / seek_to_time / set_playback_speed: the room's new reference."""

    room_id: str
    action: str
    is_playing: bool
    current_time: float
    playback_speed: float
    playback_updated_at: datetime | None
    host_user_id: str
    episode_number: int
    sync: Mapping[str, Any]
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class Heartbeat:
    """record_heartbeat: the caller's drift from the host position, computed by the database."""

    room_id: str
    current_time: float
    expected_time: float
    time_difference: float
    is_synced: bool
    sync_level: str
    is_playing: bool
    playback_speed: float
    server_time: datetime | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class HeartbeatOutcome:
    """One member's row of record_heartbeats: ``outcome`` is ok, throttled or not_member."""

    user_id: str
    outcome: str
    reported_time: float
    expected_time: float
    time_difference: float
    is_synced: bool
    sync_level: str
    server_time: datetime | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class HeartbeatBatch:
    """record_heartbeats (service role): one outcome per member, in user id order."""

    results: tuple[HeartbeatOutcome, ...]

    def _count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def accepted(self) -> int:
        return self._count("ok")

    @property
    def throttled(self) -> int:
        return self._count("throttled")

    @property
    def not_members(self) -> int:
        return self._count("not_member")


@dataclass(frozen=True)
class SyncState:
    """get_room_sync_state — the "Live" button: where the host is now (``expected_time``)."""

    room_id: str
    expected_time: float
    is_playing: bool
    playback_speed: float
    anime_id: str
    episode_number: int
    video_url: str
    host_user_id: str | None
    host_username: str | None
    server_time: datetime | None
    me: Mapping[str, Any] | None
    stats: Mapping[str, Any]
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class SyncMetrics:
    """get_room_sync_metrics: drift statistics over the recent window."""

    room_id: str
    window: str
    since: datetime | None
    healthy: bool
    members: int
    reporting_members: int
    synced_members: int
    out_of_sync_members: int
    sync_percentage: float | None
    samples: int
    avg_drift: float | None
    p95_drift: float | None
    max_drift: float | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RealtimeMetricsSummary:
    """get_realtime_metrics_summary: the reports of the last ``window_minutes``."""

    room_id: str
    window_minutes: int
    reporters: int
    active_connections: int | None
    total_events: int | None
    avg_latency_ms: float | None
    error_rate: float | None
    last_report_at: datetime | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class MaintenanceReport:
    """maintain (service role): what each job did."""

    ran_at: datetime | None
    rooms: Mapping[str, Any]
    rate_limits: Mapping[str, Any]
    room_events: Mapping[str, Any]
    sync_history: Mapping[str, Any]
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class ForgottenUser:
    """forget_user (service role): what was removed for a deleted account."""

    user_id: str
    rooms_left: int
    comments_deleted: int
    comments_tombstoned: int
    rate_limit_counters_deleted: int
    realtime_metrics_deleted: int
    raw: Mapping[str, Any] = _raw()


def _room_page(d: Mapping[str, Any]) -> RoomPage:
    return _build(RoomPage, d, items=lambda xs: tuple(Room.from_json(x) for x in xs))


def _comment_page(d: Mapping[str, Any]) -> CommentPage:
    return _build(CommentPage, d, items=lambda xs: tuple(Comment.from_json(x) for x in xs))


# ---------------------------------------------------------------------------------------------
# The RPC table: each public function once, with its SQL argument types (so Python floats reach
# numeric parameters, and NaN or infinities reach the database's own checks) and its parser.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc(Generic[T]):
    """One public SQL function: name, ``(argument, sql type)`` pairs, and its result parser."""

    name: str
    args: tuple[tuple[str, str], ...]
    parse: Callable[[Any], T]
    returns_rows: bool = False

    def sql(self, given: Mapping[str, Any]) -> str:
        """``select public.f(p_a => %(p_a)s::type, …)`` for the arguments given (not None);
        omitted ones take the function's SQL default. A function returning rows is read as
        one JSON array of them."""
        named = ", ".join(f"{a} => %({a})s::{t}" for a, t in self.args if a in given)
        if self.returns_rows:
            return (
                "select coalesce(jsonb_agg(to_jsonb(r)), '[]'::jsonb) as result"
                f" from public.{self.name}({named}) as r"
            )
        return f"select public.{self.name}({named}) as result"

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for arg, sqltype in self.args:
            value = values.get(arg.removeprefix("p_"))
            if value is None:
                continue
            params[arg] = Jsonb(value) if sqltype == "jsonb" else value
        return params


def _args(spec: str) -> tuple[tuple[str, str], ...]:
    pairs = (item.split(":") for item in spec.split())
    return tuple((f"p_{name}", sqltype) for name, sqltype in pairs)


def _batch_arguments(room_id: str, heartbeats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """record_heartbeats takes one array per field: element i is member i's heartbeat."""
    return {
        "room_id": room_id,
        "user_ids": [h.get("user_id") for h in heartbeats],
        "current_times": [h.get("current_time") for h in heartbeats],
        "is_playing": [h.get("is_playing") for h in heartbeats],
    }


def _same(value: Any) -> Any:
    return value


CREATE_ROOM = Rpc(
    "create_room",
    _args(
        "title:text anime_id:text anime_title:text episode_number:integer video_url:text"
        " username:text source_id:text is_public:boolean avatar_url:text"
    ),
    lambda d: _build(CreatedRoom, d, room=Room.from_json, membership=Member.from_json),
)
JOIN_ROOM = Rpc(
    "join_room",
    _args("room_id:text access_key:text username:text avatar_url:text"),
    lambda d: _build(JoinResult, d, room=Room.from_json, membership=Member.from_json),
)
LEAVE_ROOM = Rpc("leave_room", _args("room_id:text"), lambda d: _build(LeaveResult, d))
KICK_MEMBER = Rpc(
    "kick_member", _args("room_id:text user_id:text"), lambda d: _build(KickResult, d)
)
TRANSFER_HOST = Rpc(
    "transfer_host", _args("room_id:text new_host:text"), lambda d: _build(TransferResult, d)
)
UPDATE_ROOM = Rpc(
    "update_room",
    _args(
        "room_id:text title:text episode_number:integer video_url:text is_public:boolean"
        " rotate_access_key:boolean"
    ),
    lambda d: _build(UpdatedRoom, d, room=Room.from_json),
)
DELETE_ROOM = Rpc("delete_room", _args("room_id:text"), lambda d: _build(Deleted, d))
GET_ROOM = Rpc(
    "get_room",
    _args("room_id:text"),
    lambda d: _build(RoomDetails, d, room=Room.from_json, members=_members),
)
GET_ROOM_ACCESS_KEY: Rpc[str | None] = Rpc("get_room_access_key", _args("room_id:text"), _same)
LIST_PUBLIC_ROOMS = Rpc(
    "list_public_rooms", _args("anime_id:text limit:integer cursor:text"), _room_page
)
POST_COMMENT = Rpc(
    "post_comment",
    _args(
        "anime_id:text episode_number:integer message:text username:text avatar_url:text"
        " room_id:text parent_id:bigint video_timestamp:numeric"
    ),
    Comment.from_json,
)
EDIT_COMMENT = Rpc("edit_comment", _args("comment_id:bigint message:text"), Comment.from_json)
DELETE_COMMENT = Rpc("delete_comment", _args("comment_id:bigint"), lambda d: _build(Deleted, d))
GET_COMMENTS = Rpc(
    "get_comments",
    _args("anime_id:text episode_number:integer room_id:text cursor:text limit:integer"),
    _comment_page,
)
GET_OR_CREATE_ANCHOR = Rpc(
    "get_or_create_anchor", _args("anime_id:text episode_number:integer"), Comment.from_json
)
CHANGE_PLAYBACK_STATE = Rpc(
    "change_playback_state",
    _args("room_id:text is_playing:boolean current_time:numeric"),
    lambda d: _build(PlaybackState, d),
)
SEEK_TO_TIME = Rpc(
    "seek_to_time", _args("room_id:text time:numeric"), lambda d: _build(PlaybackState, d)
)
SET_PLAYBACK_SPEED = Rpc(
    "set_playback_speed", _args("room_id:text speed:numeric"), lambda d: _build(PlaybackState, d)
)
RECORD_HEARTBEAT = Rpc(
    "record_heartbeat",
    _args("room_id:text current_time:numeric is_playing:boolean"),
    lambda d: _build(Heartbeat, d),
)
RECORD_HEARTBEATS = Rpc(
    "record_heartbeats",
    _args("room_id:text user_ids:text[] current_times:numeric[] is_playing:boolean[]"),
    lambda rows: HeartbeatBatch(tuple(_build(HeartbeatOutcome, r) for r in rows)),
    returns_rows=True,
)
GET_ROOM_SYNC_STATE = Rpc(
    "get_room_sync_state", _args("room_id:text"), lambda d: _build(SyncState, d)
)
GET_ROOM_SYNC_METRICS = Rpc(
    "get_room_sync_metrics", _args("room_id:text"), lambda d: _build(SyncMetrics, d)
)
BROADCAST_TO_ROOM: Rpc[int] = Rpc(
    "broadcast_to_room", _args("room_id:text event_type:text payload:jsonb"), int
)
RECORD_REALTIME_METRICS: Rpc[int] = Rpc(
    "record_realtime_metrics",
    _args(
        "room_id:text active_connections:integer total_events:bigint avg_latency_ms:numeric"
        " error_rate:numeric"
    ),
    int,
)
GET_REALTIME_METRICS_SUMMARY = Rpc(
    "get_realtime_metrics_summary",
    _args("room_id:text window_minutes:integer"),
    lambda d: _build(RealtimeMetricsSummary, d),
)
CHECK_RATE_LIMIT: Rpc[bool] = Rpc(
    "check_rate_limit",
    _args("user_id:text action:text window_minutes:integer max_requests:integer"),
    bool,
)
MAINTAIN = Rpc("maintain", (), lambda d: _build(MaintenanceReport, d))
FORGET_USER = Rpc("forget_user", _args("user_id:text"), lambda d: _build(ForgottenUser, d))

RPCS: tuple[Rpc[Any], ...] = (
    CREATE_ROOM, JOIN_ROOM, LEAVE_ROOM, KICK_MEMBER, TRANSFER_HOST, UPDATE_ROOM, DELETE_ROOM,
    GET_ROOM, GET_ROOM_ACCESS_KEY, LIST_PUBLIC_ROOMS, POST_COMMENT, EDIT_COMMENT, DELETE_COMMENT,
    GET_COMMENTS, GET_OR_CREATE_ANCHOR, CHANGE_PLAYBACK_STATE, SEEK_TO_TIME, SET_PLAYBACK_SPEED,
    RECORD_HEARTBEAT, RECORD_HEARTBEATS, GET_ROOM_SYNC_STATE, GET_ROOM_SYNC_METRICS,
    BROADCAST_TO_ROOM, RECORD_REALTIME_METRICS, GET_REALTIME_METRICS_SUMMARY, CHECK_RATE_LIMIT,
    MAINTAIN, FORGET_USER,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Sessions: one typed method per RPC. The async class is the same list with ``await``; a test
# checks that both carry the same methods with the same signatures.
# ---------------------------------------------------------------------------------------------


class Session(Caller):
    """Typed RPC methods for one caller. Arguments drop the SQL ``p_`` prefix."""

    def _rpc(self, rpc: Rpc[T], values: Mapping[str, Any]) -> T:
        params = rpc.params(values)
        with self.transaction() as conn:
            row = conn.execute(rpc.sql(params), params).fetchone()
        return rpc.parse(row[0] if row else None)

    # Rooms -------------------------------------------------------------------------------

    def create_room(
        self,
        *,
        title: str,
        anime_id: str,
        anime_title: str,
        episode_number: int,
        video_url: str,
        username: str,
        source_id: str | None = None,
        is_public: bool = True,
        avatar_url: str | None = None,
    ) -> CreatedRoom:
        """Create a room with the caller as host (private rooms get an access key)."""
        return self._rpc(CREATE_ROOM, locals())

    def join_room(
        self,
        room_id: str,
        *,
        access_key: str | None = None,
        username: str | None = None,
        avatar_url: str | None = None,
    ) -> JoinResult:
        """Join a room; a wrong key is a result (``status='invalid_access_key'``)."""
        return self._rpc(JOIN_ROOM, locals())

    def leave_room(self, room_id: str) -> LeaveResult:
        """Leave a room; the host role moves on to the longest-present member."""
        return self._rpc(LEAVE_ROOM, locals())

    def kick_member(self, room_id: str, user_id: str) -> KickResult:
        """Host only: remove a member."""
        return self._rpc(KICK_MEMBER, locals())

    def transfer_host(self, room_id: str, new_host: str) -> TransferResult:
        """Host only: hand the host role to another member."""
        return self._rpc(TRANSFER_HOST, locals())

    def update_room(
        self,
        room_id: str,
        *,
        title: str | None = None,
        episode_number: int | None = None,
        video_url: str | None = None,
        is_public: bool | None = None,
        rotate_access_key: bool | None = None,
    ) -> UpdatedRoom:
        """Host only: change what is given (None leaves a field as it is)."""
        return self._rpc(UPDATE_ROOM, locals())

    def delete_room(self, room_id: str) -> Deleted:
        """Host only: delete the room."""
        return self._rpc(DELETE_ROOM, locals())

    def get_room(self, room_id: str) -> RoomDetails:
        """The room, its members and (host only) its access key."""
        return self._rpc(GET_ROOM, locals())

    def get_room_access_key(self, room_id: str) -> str | None:
        """Host only: the private room's access key (None for a public room)."""
        return self._rpc(GET_ROOM_ACCESS_KEY, locals())

    def list_public_rooms(
        self, *, anime_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RoomPage:
        """Public rooms, most recently active first."""
        return self._rpc(LIST_PUBLIC_ROOMS, locals())

    # Comments ----------------------------------------------------------------------------

    def post_comment(
        self,
        *,
        anime_id: str,
        episode_number: int,
        message: str,
        username: str | None = None,
        avatar_url: str | None = None,
        room_id: str | None = None,
        parent_id: int | None = None,
        video_timestamp: float | None = None,
    ) -> Comment:
        """Post to an episode's thread, or to a room's chat with ``room_id``."""
        return self._rpc(POST_COMMENT, locals())

    def edit_comment(self, comment_id: int, message: str) -> Comment:
        """Edit one of your own comments."""
        return self._rpc(EDIT_COMMENT, locals())

    def delete_comment(self, comment_id: int) -> Deleted:
        """Delete one of your own comments; with replies it stays as a tombstone."""
        return self._rpc(DELETE_COMMENT, locals())

    def get_comments(
        self,
        *,
        anime_id: str,
        episode_number: int,
        room_id: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> CommentPage:
        """A page of an episode's (or a room's) comments, newest first."""
        return self._rpc(GET_COMMENTS, locals())

    def get_or_create_anchor(self, anime_id: str, episode_number: int) -> Comment:
        """The episode thread's anchor comment."""
        return self._rpc(GET_OR_CREATE_ANCHOR, locals())

    # Playback sync -----------------------------------------------------------------------

    def change_playback_state(
        self, room_id: str, is_playing: bool, current_time: float | None = None
    ) -> PlaybackState:
        """Host only: play or pause (optionally at a position)."""
        return self._rpc(CHANGE_PLAYBACK_STATE, locals())

    def seek_to_time(self, room_id: str, time: float) -> PlaybackState:
        """Host only: seek."""
        return self._rpc(SEEK_TO_TIME, locals())

    def set_playback_speed(self, room_id: str, speed: float) -> PlaybackState:
        """Host only: change the speed."""
        return self._rpc(SET_PLAYBACK_SPEED, locals())

    def record_heartbeat(self, room_id: str, current_time: float, is_playing: bool) -> Heartbeat:
        """Report the caller's position; the database answers with its drift and sync level."""
        return self._rpc(RECORD_HEARTBEAT, locals())

    def record_heartbeats(
        self, room_id: str, heartbeats: Sequence[Mapping[str, Any]]
    ) -> HeartbeatBatch:
        """Service role: many members' heartbeats at once (``user_id``, ``current_time``,
        ``is_playing`` each)."""
        return self._rpc(RECORD_HEARTBEATS, _batch_arguments(room_id, heartbeats))

    def get_room_sync_state(self, room_id: str) -> SyncState:
        """The "Live" state: the host's expected position now and the room's sync stats."""
        return self._rpc(GET_ROOM_SYNC_STATE, locals())

    def get_room_sync_metrics(self, room_id: str) -> SyncMetrics:
        """Drift statistics of the room's recent heartbeats."""
        return self._rpc(GET_ROOM_SYNC_METRICS, locals())

    # Realtime ----------------------------------------------------------------------------

    def broadcast_to_room(self, room_id: str, event_type: str, payload: Mapping[str, Any]) -> int:
        """Send a client event (e.g. ``chat_message``) to the room; returns its event id."""
        return self._rpc(BROADCAST_TO_ROOM, {**locals(), "payload": dict(payload)})

    def record_realtime_metrics(
        self,
        room_id: str,
        *,
        active_connections: int,
        total_events: int,
        avg_latency_ms: float,
        error_rate: float,
    ) -> int:
        """Report the client's realtime connection metrics; returns the report id."""
        return self._rpc(RECORD_REALTIME_METRICS, locals())

    def get_realtime_metrics_summary(
        self, room_id: str, window_minutes: int | None = None
    ) -> RealtimeMetricsSummary:
        """The room's realtime metrics over the last ``window_minutes`` (SQL default 5)."""
        return self._rpc(GET_REALTIME_METRICS_SUMMARY, locals())

    # Rate limits and maintenance ---------------------------------------------------------

    def check_rate_limit(
        self,
        user_id: str,
        action: str,
        *,
        window_minutes: int | None = None,
        max_requests: int | None = None,
    ) -> bool:
        """Count one request of an app-defined action; True while within the limit."""
        return self._rpc(CHECK_RATE_LIMIT, locals())

    def maintain(self) -> MaintenanceReport:
        """Service role: run every maintenance job now."""
        return self._rpc(MAINTAIN, {})

    def forget_user(self, user_id: str) -> ForgottenUser:
        """Service role: forget a deleted account (memberships, comments, counters)."""
        return self._rpc(FORGET_USER, {"user_id": user_id})


class AsyncSession(AsyncCaller):
    """The asyncio form of :class:`Session`."""

    async def _rpc(self, rpc: Rpc[T], values: Mapping[str, Any]) -> T:
        params = rpc.params(values)
        async with self.transaction() as conn:
            cur = await conn.execute(rpc.sql(params), params)
            row = await cur.fetchone()
        return rpc.parse(row[0] if row else None)

    # Rooms -------------------------------------------------------------------------------

    async def create_room(
        self,
        *,
        title: str,
        anime_id: str,
        anime_title: str,
        episode_number: int,
        video_url: str,
        username: str,
        source_id: str | None = None,
        is_public: bool = True,
        avatar_url: str | None = None,
    ) -> CreatedRoom:
        """Create a room with the caller as host (private rooms get an access key)."""
        return await self._rpc(CREATE_ROOM, locals())

    async def join_room(
        self,
        room_id: str,
        *,
        access_key: str | None = None,
        username: str | None = None,
        avatar_url: str | None = None,
    ) -> JoinResult:
        """Join a room; a wrong key is a result (``status='invalid_access_key'``)."""
        return await self._rpc(JOIN_ROOM, locals())

    async def leave_room(self, room_id: str) -> LeaveResult:
        """Leave a room; the host role moves on to the longest-present member."""
        return await self._rpc(LEAVE_ROOM, locals())

    async def kick_member(self, room_id: str, user_id: str) -> KickResult:
        """Host only: remove a member."""
        return await self._rpc(KICK_MEMBER, locals())

    async def transfer_host(self, room_id: str, new_host: str) -> TransferResult:
        """Host only: hand the host role to another member."""
        return await self._rpc(TRANSFER_HOST, locals())

    async def update_room(
        self,
        room_id: str,
        *,
        title: str | None = None,
        episode_number: int | None = None,
        video_url: str | None = None,
        is_public: bool | None = None,
        rotate_access_key: bool | None = None,
    ) -> UpdatedRoom:
        """Host only: change what is given (None leaves a field as it is)."""
        return await self._rpc(UPDATE_ROOM, locals())

    async def delete_room(self, room_id: str) -> Deleted:
        """Host only: delete the room."""
        return await self._rpc(DELETE_ROOM, locals())

    async def get_room(self, room_id: str) -> RoomDetails:
        """The room, its members and (host only) its access key."""
        return await self._rpc(GET_ROOM, locals())

    async def get_room_access_key(self, room_id: str) -> str | None:
        """Host only: the private room's access key (None for a public room)."""
        return await self._rpc(GET_ROOM_ACCESS_KEY, locals())

    async def list_public_rooms(
        self, *, anime_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RoomPage:
        """Public rooms, most recently active first."""
        return await self._rpc(LIST_PUBLIC_ROOMS, locals())

    # Comments ----------------------------------------------------------------------------

    async def post_comment(
        self,
        *,
        anime_id: str,
        episode_number: int,
        message: str,
        username: str | None = None,
        avatar_url: str | None = None,
        room_id: str | None = None,
        parent_id: int | None = None,
        video_timestamp: float | None = None,
    ) -> Comment:
        """Post to an episode's thread, or to a room's chat with ``room_id``."""
        return await self._rpc(POST_COMMENT, locals())

    async def edit_comment(self, comment_id: int, message: str) -> Comment:
        """Edit one of your own comments."""
        return await self._rpc(EDIT_COMMENT, locals())

    async def delete_comment(self, comment_id: int) -> Deleted:
        """Delete one of your own comments; with replies it stays as a tombstone."""
        return await self._rpc(DELETE_COMMENT, locals())

    async def get_comments(
        self,
        *,
        anime_id: str,
        episode_number: int,
        room_id: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> CommentPage:
        """A page of an episode's (or a room's) comments, newest first."""
        return await self._rpc(GET_COMMENTS, locals())

    async def get_or_create_anchor(self, anime_id: str, episode_number: int) -> Comment:
        """The episode thread's anchor comment."""
        return await self._rpc(GET_OR_CREATE_ANCHOR, locals())

    # Playback sync -----------------------------------------------------------------------

    async def change_playback_state(
        self, room_id: str, is_playing: bool, current_time: float | None = None
    ) -> PlaybackState:
        """Host only: play or pause (optionally at a position)."""
        return await self._rpc(CHANGE_PLAYBACK_STATE, locals())

    async def seek_to_time(self, room_id: str, time: float) -> PlaybackState:
        """Host only: seek."""
        return await self._rpc(SEEK_TO_TIME, locals())

    async def set_playback_speed(self, room_id: str, speed: float) -> PlaybackState:
        """Host only: change the speed."""
        return await self._rpc(SET_PLAYBACK_SPEED, locals())

    async def record_heartbeat(
        self, room_id: str, current_time: float, is_playing: bool
    ) -> Heartbeat:
        """Report the caller's position; the database answers with its drift and sync level."""
        return await self._rpc(RECORD_HEARTBEAT, locals())

    async def record_heartbeats(
        self, room_id: str, heartbeats: Sequence[Mapping[str, Any]]
    ) -> HeartbeatBatch:
        """Service role: many members' heartbeats at once (``user_id``, ``current_time``,
        ``is_playing`` each)."""
        return await self._rpc(RECORD_HEARTBEATS, _batch_arguments(room_id, heartbeats))

    async def get_room_sync_state(self, room_id: str) -> SyncState:
        """The "Live" state: the host's expected position now and the room's sync stats."""
        return await self._rpc(GET_ROOM_SYNC_STATE, locals())

    async def get_room_sync_metrics(self, room_id: str) -> SyncMetrics:
        """Drift statistics of the room's recent heartbeats."""
        return await self._rpc(GET_ROOM_SYNC_METRICS, locals())

    # Realtime ----------------------------------------------------------------------------

    async def broadcast_to_room(
        self, room_id: str, event_type: str, payload: Mapping[str, Any]
    ) -> int:
        """Send a client event (e.g. ``chat_message``) to the room; returns its event id."""
        return await self._rpc(BROADCAST_TO_ROOM, {**locals(), "payload": dict(payload)})

    async def record_realtime_metrics(
        self,
        room_id: str,
        *,
        active_connections: int,
        total_events: int,
        avg_latency_ms: float,
        error_rate: float,
    ) -> int:
        """Report the client's realtime connection metrics; returns the report id."""
        return await self._rpc(RECORD_REALTIME_METRICS, locals())

    async def get_realtime_metrics_summary(
        self, room_id: str, window_minutes: int | None = None
    ) -> RealtimeMetricsSummary:
        """The room's realtime metrics over the last ``window_minutes`` (SQL default 5)."""
        return await self._rpc(GET_REALTIME_METRICS_SUMMARY, locals())

    # Rate limits and maintenance ---------------------------------------------------------

    async def check_rate_limit(
        self,
        user_id: str,
        action: str,
        *,
        window_minutes: int | None = None,
        max_requests: int | None = None,
    ) -> bool:
        """Count one request of an app-defined action; True while within the limit."""
        return await self._rpc(CHECK_RATE_LIMIT, locals())

    async def maintain(self) -> MaintenanceReport:
        """Service role: run every maintenance job now."""
        return await self._rpc(MAINTAIN, {})

    async def forget_user(self, user_id: str) -> ForgottenUser:
        """Service role: forget a deleted account (memberships, comments, counters)."""
        return await self._rpc(FORGET_USER, {"user_id": user_id})


class Client:
    """The entry point: ``Client(url | connection | pool)`` hands out sessions.

    ``.as_user(user_id)`` acts as a signed-in user (role authenticated), ``.anonymous()`` as the
    anon role without identity, ``.service()`` as service_role (trusted servers only).
    """

    def __init__(self, source: psycopg.Connection[Any] | _SyncPool | str) -> None:
        self.source = source

    def as_user(self, user_id: str) -> Session:
        return Session(self.source, user_id, "authenticated")

    def anonymous(self) -> Session:
        return Session(self.source, None, "anon")

    def service(self) -> Session:
        return Session(self.source, None, "service_role")


class AsyncClient:
    """The asyncio form of :class:`Client`."""

    def __init__(self, source: psycopg.AsyncConnection[Any] | _AsyncPool | str) -> None:
        self.source = source

    def as_user(self, user_id: str) -> AsyncSession:
        return AsyncSession(self.source, user_id, "authenticated")

    def anonymous(self) -> AsyncSession:
        return AsyncSession(self.source, None, "anon")

    def service(self) -> AsyncSession:
        return AsyncSession(self.source, None, "service_role")
