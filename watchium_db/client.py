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
types, result parser) and has one typed method, written once in :class:`RpcMethods` and shared
by :class:`Session` (returns the result) and :class:`AsyncSession` (returns an awaitable of
it). Arguments drop the SQL ``p_`` prefix; arguments left as None take the SQL default.

    with Client("postgresql://…") as client:        # holds a connection pool; close() ends it
        alice = client.as_user("alice")             # .anonymous(), .service() (service_role)
        room = alice.create_room(title="Friday", anime_id="frieren", anime_title="Frieren",
                                 episode_number=1, video_url="https://…", username="Alice")
        alice.change_playback_state(room.room.room_id, True, 0.0)
    async with AsyncClient(url) as client:
        state = await client.as_user("bob").get_room_sync_state(room.room.room_id)

Rules (docs/client.md):

* A call refuses a connection that already has a transaction open
  (:class:`~watchium_db.errors.TransactionInProgress`): it would otherwise run as a savepoint
  and leave the caller's role and claims set on the connection until the caller commits.
* No server-side prepared statements: every statement is sent with ``prepare=False`` and pooled
  connections are made with ``prepare_threshold=None``, so the client is correct behind
  pgbouncer or Supabase's pooler in transaction mode.
"""

# The typed methods are signatures with a docstring: their bodies are never run.
# mypy: disable-error-code="empty-body"

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from watchium_db.errors import TransactionInProgress, from_database_error

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

#: Connection settings of every connection the client opens itself: autocommit (each call is
#: its own transaction) and no server-side prepared statements (transaction pooling).
CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": None}

_CLAIMS_SQL = "select pg_catalog.set_config('request.jwt.claims', %s, true)"


def _call_sql(function: str, args: Mapping[str, Any]) -> str:
    """``select * from public.f(a => %(a)s::type, …)``: typed like the RPC table when the
    function is in it; other floats are sent as numeric (a float8 argument would not match a
    numeric parameter, 42883)."""
    if not function.replace("_", "").isalnum():
        raise ValueError(f"not a function name: {function!r}")
    known = RPC_BY_NAME.get(function)
    types = dict(known.args) if known is not None else {}
    named = []
    for name, value in args.items():
        sqltype = types.get(name) or ("numeric" if isinstance(value, float) else None)
        cast = f"::{sqltype}" if sqltype else ""
        named.append(f"{name} => %({name})s{cast}")
    return f"select * from public.{function}({', '.join(named)})"


def _call_params(args: Mapping[str, Any]) -> dict[str, Any]:
    return {k: Jsonb(dict(v)) if isinstance(v, Mapping) else v for k, v in args.items()}


def _refuse_open_transaction(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    status = conn.info.transaction_status
    if status != TransactionStatus.IDLE:
        raise TransactionInProgress(
            "the connection already has a transaction open"
            f" ({status.name.lower()}); a watchium-db call runs as its own transaction",
            hint="commit or roll back first, or give the client its own connection or a pool",
        )


class Caller:
    """Calls watchium-db functions as one user (or anonymously, or as service_role).

    ``source`` is a pool (anything with ``connection()``, e.g. a psycopg_pool pool), a
    connection, or a URL (one new connection per call; :class:`Client` holds a pool instead).
    """

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
            with psycopg.connect(self._source, **CONNECTION_KWARGS) as conn:
                yield conn
        elif isinstance(self._source, psycopg.Connection):
            yield self._source
        else:
            with self._source.connection() as conn:
                yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction acting as this caller; identity ends with it.

        Refuses (:class:`~watchium_db.errors.TransactionInProgress`) a connection that is
        already in a transaction. Run statements in it with ``prepare=False`` when the
        connection goes through a transaction pooler.
        """
        with self._connection() as conn:
            _refuse_open_transaction(conn)
            try:
                with conn.transaction():
                    conn.execute(_CLAIMS_SQL, (claims_for(self.user_id, self.role),), prepare=False)
                    conn.execute(f"set local role {self.role}", prepare=False)  # one of ROLES
                    yield conn
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None):
                    raise from_database_error(exc) from exc
                raise

    def call(self, function: str, **args: Any) -> list[Row]:
        """Call ``public.<function>`` with named arguments; return its rows as dicts."""
        with self.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_call_sql(function, args), _call_params(args), prepare=False)
            return cur.fetchall()

    def call_one(self, function: str, **args: Any) -> Any:
        """Call a function that returns one value (a scalar or jsonb)."""
        return _one(self.call(function, **args))


def _one(rows: list[Row]) -> Any:
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
            conn = await psycopg.AsyncConnection.connect(self._source, **CONNECTION_KWARGS)
            async with conn:
                yield conn
        elif isinstance(self._source, psycopg.AsyncConnection):
            yield self._source
        else:
            async with self._source.connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A transaction acting as this caller; the same rules as :meth:`Caller.transaction`."""
        async with self._connection() as conn:
            _refuse_open_transaction(conn)
            try:
                async with conn.transaction():
                    await conn.execute(
                        _CLAIMS_SQL, (claims_for(self.user_id, self.role),), prepare=False
                    )
                    await conn.execute(f"set local role {self.role}", prepare=False)
                    yield conn
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None):
                    raise from_database_error(exc) from exc
                raise

    async def call(self, function: str, **args: Any) -> list[Row]:
        """Call ``public.<function>`` with named arguments; return its rows as dicts."""
        async with self.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_call_sql(function, args), _call_params(args), prepare=False)
            return await cur.fetchall()

    async def call_one(self, function: str, **args: Any) -> Any:
        """Call a function that returns one value (a scalar or jsonb)."""
        return _one(await self.call(function, **args))


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
    #: None follows visibility (public: open, private: key); open, key or approval (0026).
    join_policy: str | None = None
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
    #: host, co_host, member or viewer (revision 0009).
    role: str | None = None
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
    #: Set when the comment is hidden from everyone but its author (revision 0017).
    hidden_at: datetime | None = None
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
    #: When the ban that came with the kick ends (kick_member with ban_seconds).
    banned_until: datetime | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class BanResult:
    """ban_member: until when (None: for good), and whether a member was removed."""

    room_id: str
    user_id: str
    ends_at: datetime | None
    removed: bool
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class MuteResult:
    """mute_member: until when (None: until unmuted) and whether it is a shadow mute."""

    room_id: str
    user_id: str
    ends_at: datetime | None
    shadow: bool
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class ModerationStatus:
    """unban_member / unmute_member: unbanned | not_banned, unmuted | not_muted."""

    room_id: str
    user_id: str
    status: str
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class HiddenComments:
    """hide_member_comments: how many comments were hidden."""

    room_id: str
    user_id: str
    hidden: int
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class JoinPolicyChange:
    """set_room_join_policy: the policy in force now and before, and the waiting requests
    dropped by leaving approval."""

    room_id: str
    join_policy: str
    previous_join_policy: str
    requests_dropped: int
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class JoinRequestStatus:
    """request_to_join: 'pending', 'approved', 'refused', 'member' or 'invalid_access_key' (a
    result, as in join_room, so the counted attempt commits)."""

    status: str
    room_id: str
    requested_at: datetime | None = None
    answered_at: datetime | None = None
    valid_until: datetime | None = None
    retry_after: datetime | None = None
    attempts_left: int | None = None
    raw: Mapping[str, Any] = _raw()

    @property
    def approved(self) -> bool:
        """Whether join_room now admits the caller (or it is a member already)."""
        return self.status in ("approved", "member")


@dataclass(frozen=True)
class JoinRequest:
    """One entry of get_join_requests."""

    user_id: str
    username: str
    message: str | None
    status: str
    created_at: datetime | None
    answered_by: str | None
    answered_at: datetime | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class JoinRequests:
    """get_join_requests: pending and accepted (not yet used) requests, oldest first."""

    room_id: str
    join_policy: str
    requests: tuple[JoinRequest, ...]
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class JoinRequestAnswer:
    """answer_join_request: 'approved' or 'refused'."""

    room_id: str
    user_id: str
    status: str
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class JoinRequestWithdrawal:
    """withdraw_join_request: ``withdrawn`` is False when there was nothing to withdraw."""

    room_id: str
    withdrawn: bool
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RoomModeration:
    """get_room_moderation: bans and mutes in force (None: the caller may not read that list)."""

    room_id: str
    bans: tuple[Mapping[str, Any], ...] | None
    mutes: tuple[Mapping[str, Any], ...] | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RoleChange:
    """set_member_role: the member's role now and before."""

    room_id: str
    user_id: str
    role: str
    previous_role: str
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class PermissionChange:
    """set_room_permission: the permission's minimum role now and before."""

    room_id: str
    permission: str
    min_role: str
    previous_min_role: str
    is_default: bool
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RoomPermission:
    """One permission of a room's map, and whether the caller has it."""

    permission: str
    min_role: str
    default_min_role: str
    allowed: bool
    description: str
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RoomPermissions:
    """get_room_permissions: the caller's role (None for a non-member) and the room's map."""

    room_id: str
    role: str | None
    permissions: tuple[RoomPermission, ...]
    raw: Mapping[str, Any] = _raw()


def _permissions(items: list[Mapping[str, Any]]) -> tuple[RoomPermission, ...]:
    return tuple(_build(RoomPermission, p) for p in items)


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
    #: None when the member plays another episode (``episode_mismatch``): no drift measured.
    time_difference: float | None
    is_synced: bool
    sync_level: str
    is_playing: bool
    playback_speed: float
    server_time: datetime | None
    #: The reported position corrected by the one-way delay (while playing).
    reported_time: float | None = None
    #: The member's smoothed round-trip time (ms), when it ever reported one.
    rtt_ms: float | None = None
    #: Server clock minus client clock (ms), when a send time was given.
    clock_offset_ms: float | None = None
    #: The send time was more than 2 s from the server clock: not used.
    client_time_ignored: bool | None = None
    #: The member plays another episode than the room's (sync_level wrong_episode).
    episode_mismatch: bool | None = None
    reason: str | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class HeartbeatOutcome:
    """One member's row of record_heartbeats: ``outcome`` is ok, throttled (too early, or its
    presence row updated by another transaction during the batch; nothing written) or not_member."""

    user_id: str
    outcome: str
    reported_time: float
    expected_time: float
    time_difference: float | None
    is_synced: bool
    sync_level: str
    server_time: datetime | None
    rtt_ms: float | None = None
    clock_offset_ms: float | None = None
    client_time_ignored: bool | None = None
    episode_mismatch: bool | None = None
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
    #: The room's waiting state: state playing, scheduled, paused or waiting; reason,
    #: blockers, ready check, scheduled start (revision 0020).
    waiting: Mapping[str, Any] | None = None
    #: Where this snapshot ends in the room's events: pass it to get_room_events to follow the
    #: room from here without a gap or a duplicate (revision 0030).
    events_position: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class RoomEvents:
    """get_room_events: a member's catch-up of its room's events after a position.
    ``position`` is passed back as is on the next call; ``more``: call again at once;
    ``held``: events of transactions still running come later; ``expired``: events after the
    position were trimmed (take a new snapshot)."""

    events: tuple[Mapping[str, Any], ...]
    position: Mapping[str, Any]
    more: bool
    held: bool
    expired: Mapping[str, Any] | None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class SyncOptions:
    """get_room_sync_options / set_room_sync_options: the room's effective sync options, in
    seconds; ``defaults`` names the options that follow the project default."""

    drift_perfect: float
    drift_good: float
    drift_minor: float
    first_load_timeout: float
    rebuffer_timeout: float
    min_start_lead: float
    episode_countdown: float
    defaults: tuple[str, ...]


#: set_ready's ``ready_check_state``: the check runs on, or how it ended (cancelled: by the
#: host, cancel_ready_check or a pause; the room stays paused; expired: its deadline passed and
#: playback started; completed: enough members ready; forced: force_resume or the host's play).
READY_CHECK_STATES = ("running", "completed", "expired", "forced", "cancelled")


@dataclass(frozen=True)
class WaitState:
    """report_playback_status / set_wait_opt_out / force_resume / start_ready_check /
    set_ready / cancel_ready_check: the caller's playback status (``me``) and the room's
    waiting state (``waiting``: state playing, scheduled, paused or waiting; reason, blockers,
    ready check). ``playback_updated_at`` in the future is a scheduled start. ``resumed``:
    force_resume only; ``cancelled``: cancel_ready_check only. set_ready only:
    ``ready_check_state`` (one of ``READY_CHECK_STATES``: ``running``, or how the check ended)
    and ``answer_counted`` (False: the check had ended, the answer changed nothing)."""

    room_id: str
    me: Mapping[str, Any] | None
    is_playing: bool
    current_time: float
    playback_updated_at: datetime | None
    waiting: Mapping[str, Any]
    resumed: bool | None = None
    cancelled: bool | None = None
    ready_check_state: str | None = None
    answer_counted: bool | None = None
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
    #: Automatic queue advances applied (revision 0013).
    queues: Mapping[str, Any] | None = None
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
    #: Queued episodes left in their queues without author (revision 0022).
    queue_items_anonymized: int | None = None
    #: Join requests deleted (revision 0027).
    join_requests_deleted: int | None = None
    raw: Mapping[str, Any] = _raw()


@dataclass(frozen=True)
class QueueItem:
    """An episode in a room's queue (position 0: the one playing)."""

    item_id: int
    position: int
    anime_id: str
    anime_title: str
    episode_number: int
    video_url: str
    duration: float
    added_by: str | None
    added_by_username: str
    added_at: datetime | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueItem:
        return _build(cls, data)


def _queue_items(items: list[Mapping[str, Any]]) -> tuple[QueueItem, ...]:
    return tuple(QueueItem.from_json(x) for x in items)


@dataclass(frozen=True)
class Queue:
    """get_queue / move_queue_item / remove_queue_item: the room's queue in position order;
    ``current_item_id`` is the item playing (None: the room's own episode)."""

    room_id: str
    current_item_id: int | None
    advance_after: float | None
    items: tuple[QueueItem, ...]
    raw: Mapping[str, Any] = _raw()

    @property
    def up_next(self) -> tuple[QueueItem, ...]:
        """The items after the one playing."""
        return tuple(i for i in self.items if i.position > 0)


@dataclass(frozen=True)
class QueueAdvance:
    """advance_queue: the item now playing (None when the queue ran out) and the new
    playback reference."""

    from_item_id: int | None
    item: QueueItem | None
    reason: str
    advanced_by: str | None
    playback: Mapping[str, Any]
    raw: Mapping[str, Any] = _raw()


def _room_page(d: Mapping[str, Any]) -> RoomPage:
    return _build(RoomPage, d, items=lambda xs: tuple(Room.from_json(x) for x in xs))


def _comment_page(d: Mapping[str, Any]) -> CommentPage:
    return _build(CommentPage, d, items=lambda xs: tuple(Comment.from_json(x) for x in xs))


@dataclass(frozen=True)
class RealtimeHealth:
    """realtime_health (service role): ``ok`` is false when ``problems`` is not empty; the
    sections (publication, realtime, authorization, events, ...) are in ``raw``."""

    ok: bool
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    checked_at: datetime | None
    raw: Mapping[str, Any] = _raw()


# ---------------------------------------------------------------------------------------------
# The RPC table: each public function once, with its SQL argument types (so Python floats reach
# numeric parameters, and NaN or infinities reach the database's own checks) and its parser.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc(Generic[T]):
    """One public SQL function: name, ``(argument, sql type)`` pairs, and its result parser.

    ``prepare`` turns the Python method's arguments into the SQL ones when they differ.
    An argument left as None is omitted (the SQL default applies), except those in
    ``null_args``: arguments without a default, where None is sent as NULL."""

    name: str
    args: tuple[tuple[str, str], ...]
    parse: Callable[[Any], T]
    returns_rows: bool = False
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    null_args: frozenset[str] = frozenset()

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
        if self.prepare is not None:
            values = self.prepare(dict(values))
        params: dict[str, Any] = {}
        for arg, sqltype in self.args:
            value = values.get(arg.removeprefix("p_"))
            if value is None and arg not in self.null_args:
                continue
            if sqltype == "jsonb":
                value = Jsonb(dict(value) if isinstance(value, Mapping) else value)
            params[arg] = value
        return params


def _args(spec: str) -> tuple[tuple[str, str], ...]:
    pairs = (item.split(":") for item in spec.split())
    return tuple((f"p_{name}", sqltype) for name, sqltype in pairs)


def _batch_arguments(values: dict[str, Any]) -> dict[str, Any]:
    """record_heartbeats takes one array per field: element i is member i's heartbeat."""
    heartbeats: Sequence[Mapping[str, Any]] = values["heartbeats"]
    return {
        "room_id": values["room_id"],
        "user_ids": [h.get("user_id") for h in heartbeats],
        "current_times": [h.get("current_time") for h in heartbeats],
        "is_playing": [h.get("is_playing") for h in heartbeats],
        # Optional fields: an array only when some heartbeat carries one.
        **{
            key: [h.get(field) for h in heartbeats]
            for key, field in (
                ("client_times", "client_time"),
                ("rtts_ms", "rtt_ms"),
                ("episode_numbers", "episode_number"),
            )
            if any(h.get(field) is not None for h in heartbeats)
        },
    }


def _same(value: Any) -> Any:
    return value


def _nothing(value: Any) -> None:
    return None


def _health(d: Mapping[str, Any]) -> RealtimeHealth:
    return _build(RealtimeHealth, d, problems=tuple, warnings=tuple)


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
    "kick_member",
    _args("room_id:text user_id:text ban_seconds:integer"),
    lambda d: _build(KickResult, d),
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
BULK_SYNC_UPDATE = Rpc(
    "bulk_sync_update",
    _args("room_id:text host_time:numeric sync_event_type:text"),
    _nothing,
    null_args=frozenset({"p_host_time"}),
)
RECORD_HEARTBEAT = Rpc(
    "record_heartbeat",
    _args(
        "room_id:text current_time:numeric is_playing:boolean client_time:numeric rtt_ms:numeric"
        " episode_number:integer"
    ),
    lambda d: _build(Heartbeat, d),
)
RECORD_HEARTBEATS = Rpc(
    "record_heartbeats",
    _args(
        "room_id:text user_ids:text[] current_times:numeric[] is_playing:boolean[]"
        " client_times:numeric[] rtts_ms:numeric[] episode_numbers:integer[]"
    ),
    lambda rows: HeartbeatBatch(tuple(_build(HeartbeatOutcome, r) for r in rows)),
    returns_rows=True,
    prepare=_batch_arguments,
)
GET_ROOM_SYNC_STATE = Rpc(
    "get_room_sync_state", _args("room_id:text"), lambda d: _build(SyncState, d)
)
GET_ROOM_EVENTS = Rpc(
    "get_room_events",
    _args("room_id:text after_xact_id:text after_event_id:bigint snapshot:text limit:integer"),
    lambda d: _build(RoomEvents, d, events=tuple),
)
GET_ROOM_SYNC_METRICS = Rpc(
    "get_room_sync_metrics", _args("room_id:text"), lambda d: _build(SyncMetrics, d)
)
GET_ROOM_SYNC_OPTIONS = Rpc(
    "get_room_sync_options",
    _args("room_id:text"),
    lambda d: _build(SyncOptions, d, defaults=tuple),
)
SET_ROOM_SYNC_OPTIONS = Rpc(
    "set_room_sync_options",
    _args("room_id:text options:jsonb"),
    lambda d: _build(SyncOptions, d, defaults=tuple),
)
REPORT_PLAYBACK_STATUS = Rpc(
    "report_playback_status",
    _args("room_id:text status:text position:numeric"),
    lambda d: _build(WaitState, d),
)
SET_WAIT_OPT_OUT = Rpc(
    "set_wait_opt_out", _args("room_id:text opt_out:boolean"), lambda d: _build(WaitState, d)
)
FORCE_RESUME = Rpc("force_resume", _args("room_id:text"), lambda d: _build(WaitState, d))
START_READY_CHECK = Rpc(
    "start_ready_check",
    _args("room_id:text timeout_seconds:numeric min_ready:integer"),
    lambda d: _build(WaitState, d),
)
SET_READY = Rpc("set_ready", _args("room_id:text ready:boolean"), lambda d: _build(WaitState, d))
CANCEL_READY_CHECK = Rpc(
    "cancel_ready_check", _args("room_id:text"), lambda d: _build(WaitState, d)
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
REALTIME_HEALTH = Rpc("realtime_health", (), _health)
CHECK_RATE_LIMIT: Rpc[bool] = Rpc(
    "check_rate_limit",
    _args("user_id:text action:text window_minutes:integer max_requests:integer"),
    bool,
)
MAINTAIN = Rpc("maintain", (), lambda d: _build(MaintenanceReport, d))
SYNC_HISTORY_HEALTH: Rpc[dict[str, Any]] = Rpc("sync_history_health", (), dict)
INSTALL_MAINTENANCE_SCHEDULE: Rpc[dict[str, Any]] = Rpc("install_maintenance_schedule", (), dict)
FORGET_USER = Rpc("forget_user", _args("user_id:text"), lambda d: _build(ForgottenUser, d))
SET_MEMBER_ROLE = Rpc(
    "set_member_role", _args("room_id:text user_id:text role:text"), lambda d: _build(RoleChange, d)
)
SET_ROOM_PERMISSION = Rpc(
    "set_room_permission",
    _args("room_id:text permission:text min_role:text"),
    lambda d: _build(PermissionChange, d),
)
BAN_MEMBER = Rpc(
    "ban_member",
    _args("room_id:text user_id:text duration_seconds:integer reason:text"),
    lambda d: _build(BanResult, d),
)
UNBAN_MEMBER = Rpc(
    "unban_member", _args("room_id:text user_id:text"), lambda d: _build(ModerationStatus, d)
)
MUTE_MEMBER = Rpc(
    "mute_member",
    _args("room_id:text user_id:text duration_seconds:integer shadow:boolean reason:text"),
    lambda d: _build(MuteResult, d),
)
UNMUTE_MEMBER = Rpc(
    "unmute_member", _args("room_id:text user_id:text"), lambda d: _build(ModerationStatus, d)
)
HIDE_MEMBER_COMMENTS = Rpc(
    "hide_member_comments", _args("room_id:text user_id:text"), lambda d: _build(HiddenComments, d)
)
GET_ROOM_MODERATION = Rpc(
    "get_room_moderation",
    _args("room_id:text"),
    lambda d: _build(RoomModeration, d, bans=tuple, mutes=tuple),
)
SET_ROOM_JOIN_POLICY = Rpc(
    "set_room_join_policy",
    _args("room_id:text policy:text"),
    lambda d: _build(JoinPolicyChange, d),
)
REQUEST_TO_JOIN = Rpc(
    "request_to_join",
    _args("room_id:text username:text message:text access_key:text"),
    lambda d: _build(JoinRequestStatus, d),
)
GET_JOIN_REQUESTS = Rpc(
    "get_join_requests",
    _args("room_id:text"),
    lambda d: _build(
        JoinRequests, d, requests=lambda rs: tuple(_build(JoinRequest, r) for r in rs)
    ),
)
ANSWER_JOIN_REQUEST = Rpc(
    "answer_join_request",
    _args("room_id:text user_id:text accept:boolean"),
    lambda d: _build(JoinRequestAnswer, d),
)
WITHDRAW_JOIN_REQUEST = Rpc(
    "withdraw_join_request",
    _args("room_id:text"),
    lambda d: _build(JoinRequestWithdrawal, d),
)
GET_ROOM_PERMISSIONS = Rpc(
    "get_room_permissions",
    _args("room_id:text"),
    lambda d: _build(RoomPermissions, d, permissions=_permissions),
)
ADD_TO_QUEUE = Rpc(
    "add_to_queue",
    _args(
        "room_id:text anime_id:text anime_title:text episode_number:integer video_url:text"
        " duration:numeric"
    ),
    QueueItem.from_json,
)
MOVE_QUEUE_ITEM = Rpc(
    "move_queue_item",
    _args("room_id:text item_id:bigint position:integer"),
    lambda d: _build(Queue, d, items=_queue_items),
)
REMOVE_QUEUE_ITEM = Rpc(
    "remove_queue_item",
    _args("room_id:text item_id:bigint"),
    lambda d: _build(Queue, d, items=_queue_items),
)
ADVANCE_QUEUE = Rpc(
    "advance_queue",
    _args("room_id:text from_item:bigint"),
    lambda d: _build(QueueAdvance, d, item=QueueItem.from_json),
    null_args=frozenset({"p_from_item"}),
)
GET_QUEUE = Rpc("get_queue", _args("room_id:text"), lambda d: _build(Queue, d, items=_queue_items))

RPCS: tuple[Rpc[Any], ...] = (
    CREATE_ROOM, JOIN_ROOM, LEAVE_ROOM, KICK_MEMBER, TRANSFER_HOST, UPDATE_ROOM, DELETE_ROOM,
    GET_ROOM, GET_ROOM_ACCESS_KEY, LIST_PUBLIC_ROOMS, POST_COMMENT, EDIT_COMMENT, DELETE_COMMENT,
    GET_COMMENTS, GET_OR_CREATE_ANCHOR, CHANGE_PLAYBACK_STATE, SEEK_TO_TIME, SET_PLAYBACK_SPEED,
    BULK_SYNC_UPDATE, RECORD_HEARTBEAT, RECORD_HEARTBEATS, GET_ROOM_SYNC_STATE, GET_ROOM_EVENTS,
    GET_ROOM_SYNC_METRICS, GET_ROOM_SYNC_OPTIONS, SET_ROOM_SYNC_OPTIONS, REPORT_PLAYBACK_STATUS,
    SET_WAIT_OPT_OUT, FORCE_RESUME, START_READY_CHECK, SET_READY, CANCEL_READY_CHECK,
    BROADCAST_TO_ROOM,
    RECORD_REALTIME_METRICS, GET_REALTIME_METRICS_SUMMARY, REALTIME_HEALTH, CHECK_RATE_LIMIT,
    MAINTAIN, FORGET_USER, SYNC_HISTORY_HEALTH, INSTALL_MAINTENANCE_SCHEDULE,
    SET_MEMBER_ROLE, SET_ROOM_PERMISSION, GET_ROOM_PERMISSIONS,
    BAN_MEMBER, UNBAN_MEMBER, MUTE_MEMBER, UNMUTE_MEMBER, HIDE_MEMBER_COMMENTS, GET_ROOM_MODERATION,
    ADD_TO_QUEUE, MOVE_QUEUE_ITEM, REMOVE_QUEUE_ITEM, ADVANCE_QUEUE, GET_QUEUE,
    SET_ROOM_JOIN_POLICY, REQUEST_TO_JOIN, GET_JOIN_REQUESTS, ANSWER_JOIN_REQUEST,
    WITHDRAW_JOIN_REQUEST,
)  # fmt: skip
RPC_BY_NAME: dict[str, Rpc[Any]] = {rpc.name: rpc for rpc in RPCS}


# ---------------------------------------------------------------------------------------------
# Typed methods, written once. Each is a signature and a docstring bound to its Rpc; reading it
# from a Session gives a function returning the result, from an AsyncSession a coroutine
# function. mypy checks that the declared return type is the Rpc's result type.
# ---------------------------------------------------------------------------------------------

P = ParamSpec("P")


_DESCRIPTION = ("__module__", "__name__", "__qualname__", "__doc__", "__signature__")
F = TypeVar("F", bound=Callable[..., Any])


def _described(call: F, method: RpcMethod[Any, Any]) -> F:
    """``call`` with the name, docstring and signature (without ``self``) of ``method``."""
    for attr in _DESCRIPTION:
        setattr(call, attr, getattr(method, attr))
    return call


class RpcMethod(Generic[P, T]):
    """A typed method of :class:`RpcMethods`: its Python signature and its :class:`Rpc`."""

    def __init__(self, rpc: Rpc[T], signature: Callable[Concatenate[Any, P], T]) -> None:
        self.rpc = rpc
        self._signature = inspect.signature(signature)
        for attr in _DESCRIPTION:
            if attr != "__signature__":
                setattr(self, attr, getattr(signature, attr))
        # As seen on an instance: without ``self``.
        params = list(self._signature.parameters.values())[1:]
        self.__signature__ = self._signature.replace(parameters=params)

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name (defaults applied), as ``Rpc.params`` reads them."""
        bound = self._signature.bind(None, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        del values[next(iter(self._signature.parameters))]
        return values

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> RpcMethod[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncSession, owner: type[Any] | None = None
    ) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, obj: Session, owner: type[Any] | None = None) -> Callable[P, T]: ...
    def __get__(self, obj: Any, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        return obj._bind(self)


def rpc(spec: Rpc[T]) -> Callable[[Callable[Concatenate[Any, P], T]], RpcMethod[P, T]]:
    """Declare a typed method of :class:`RpcMethods` calling ``spec``."""

    def declare(signature: Callable[Concatenate[Any, P], T]) -> RpcMethod[P, T]:
        return RpcMethod(spec, signature)

    return declare


class RpcMethods:
    """One typed method per RPC, shared by :class:`Session` and :class:`AsyncSession`.
    Arguments drop the SQL ``p_`` prefix; None takes the SQL default."""

    # Rooms -------------------------------------------------------------------------------

    @rpc(CREATE_ROOM)
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

    @rpc(JOIN_ROOM)
    def join_room(
        self,
        room_id: str,
        *,
        access_key: str | None = None,
        username: str | None = None,
        avatar_url: str | None = None,
    ) -> JoinResult:
        """Join a room; a wrong key is a result (``status='invalid_access_key'``)."""

    @rpc(LEAVE_ROOM)
    def leave_room(self, room_id: str) -> LeaveResult:
        """Leave a room; the host role moves on to the longest-present member."""

    @rpc(KICK_MEMBER)
    def kick_member(
        self, room_id: str, user_id: str, *, ban_seconds: int | None = None
    ) -> KickResult:
        """Remove a member of a lower role (kick permission); with ``ban_seconds`` also ban
        them that long (ban permission)."""

    @rpc(BAN_MEMBER)
    def ban_member(
        self,
        room_id: str,
        user_id: str,
        *,
        duration_seconds: int | None = None,
        reason: str | None = None,
    ) -> BanResult:
        """Ban a user (a member of a lower role is removed); None: for good (ban permission)."""

    @rpc(UNBAN_MEMBER)
    def unban_member(self, room_id: str, user_id: str) -> ModerationStatus:
        """Lift a ban (ban permission)."""

    @rpc(MUTE_MEMBER)
    def mute_member(
        self,
        room_id: str,
        user_id: str,
        *,
        duration_seconds: int | None = None,
        shadow: bool = False,
        reason: str | None = None,
    ) -> MuteResult:
        """Mute a member of a lower role; None: until unmuted; shadow: accepted, delivered only
        to the author (mute permission)."""

    @rpc(UNMUTE_MEMBER)
    def unmute_member(self, room_id: str, user_id: str) -> ModerationStatus:
        """Lift a mute (mute permission)."""

    @rpc(HIDE_MEMBER_COMMENTS)
    def hide_member_comments(self, room_id: str, user_id: str) -> HiddenComments:
        """Hide a kicked, banned or departed user's room comments (moderate_comments)."""

    @rpc(GET_ROOM_MODERATION)
    def get_room_moderation(self, room_id: str) -> RoomModeration:
        """Bans and mutes in force, for moderators."""

    @rpc(SET_ROOM_JOIN_POLICY)
    def set_room_join_policy(self, room_id: str, policy: str | None) -> JoinPolicyChange:
        """Set how non-members get in: 'open' (public rooms), 'key' (private rooms),
        'approval', or None to follow visibility (update_room permission)."""

    @rpc(REQUEST_TO_JOIN)
    def request_to_join(
        self,
        room_id: str,
        *,
        username: str | None = None,
        message: str | None = None,
        access_key: str | None = None,
    ) -> JoinRequestStatus:
        """Ask to join an approval room (a private one also needs its key); asking again
        returns the status."""

    @rpc(GET_JOIN_REQUESTS)
    def get_join_requests(self, room_id: str) -> JoinRequests:
        """Pending and accepted join requests, for members with approve_joins."""

    @rpc(ANSWER_JOIN_REQUEST)
    def answer_join_request(self, room_id: str, user_id: str, accept: bool) -> JoinRequestAnswer:
        """Accept (the user may then join once) or refuse a pending request (approve_joins)."""

    @rpc(WITHDRAW_JOIN_REQUEST)
    def withdraw_join_request(self, room_id: str) -> JoinRequestWithdrawal:
        """Withdraw your own pending (or accepted, not yet used) request; a refusal stays."""

    @rpc(SET_MEMBER_ROLE)
    def set_member_role(self, room_id: str, user_id: str, role: str) -> RoleChange:
        """Give a member of a lower role the role co_host, member or viewer (manage_roles)."""

    @rpc(SET_ROOM_PERMISSION)
    def set_room_permission(
        self, room_id: str, permission: str, min_role: str | None = None
    ) -> PermissionChange:
        """Set a permission's minimum role in the room; None: back to the default
        (manage_permissions)."""

    @rpc(GET_ROOM_PERMISSIONS)
    def get_room_permissions(self, room_id: str) -> RoomPermissions:
        """The room's permission map and the caller's role."""

    @rpc(TRANSFER_HOST)
    def transfer_host(self, room_id: str, new_host: str) -> TransferResult:
        """Host only: hand the host role to another member."""

    @rpc(UPDATE_ROOM)
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

    @rpc(DELETE_ROOM)
    def delete_room(self, room_id: str) -> Deleted:
        """Host only: delete the room."""

    @rpc(GET_ROOM)
    def get_room(self, room_id: str) -> RoomDetails:
        """The room, its members and (host only) its access key."""

    @rpc(GET_ROOM_ACCESS_KEY)
    def get_room_access_key(self, room_id: str) -> str | None:
        """Host only: the private room's access key (None for a public room)."""

    @rpc(LIST_PUBLIC_ROOMS)
    def list_public_rooms(
        self, *, anime_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RoomPage:
        """Public rooms, most recently active first."""

    # Comments ----------------------------------------------------------------------------

    @rpc(POST_COMMENT)
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

    @rpc(EDIT_COMMENT)
    def edit_comment(self, comment_id: int, message: str) -> Comment:
        """Edit one of your own comments."""

    @rpc(DELETE_COMMENT)
    def delete_comment(self, comment_id: int) -> Deleted:
        """Delete one of your own comments; with replies it stays as a tombstone."""

    @rpc(GET_COMMENTS)
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

    @rpc(GET_OR_CREATE_ANCHOR)
    def get_or_create_anchor(self, anime_id: str, episode_number: int) -> Comment:
        """The episode thread's anchor comment."""

    # Playback sync -----------------------------------------------------------------------

    @rpc(CHANGE_PLAYBACK_STATE)
    def change_playback_state(
        self, room_id: str, is_playing: bool, current_time: float | None = None
    ) -> PlaybackState:
        """Host only: play or pause (optionally at a position)."""

    @rpc(SEEK_TO_TIME)
    def seek_to_time(self, room_id: str, time: float) -> PlaybackState:
        """Host only: seek."""

    @rpc(SET_PLAYBACK_SPEED)
    def set_playback_speed(self, room_id: str, speed: float) -> PlaybackState:
        """Host only: change the speed."""

    @rpc(BULK_SYNC_UPDATE)
    def bulk_sync_update(self, room_id: str, host_time: float | None, sync_event_type: str) -> None:
        """Host (rate limited as sync_control) or service role: write one sync record per
        member against ``host_time`` (None: the host's expected position now).
        ``sync_event_type``: heartbeat, seek, play_pause, speed, episode, join or leave."""

    @rpc(RECORD_HEARTBEAT)
    def record_heartbeat(
        self,
        room_id: str,
        current_time: float,
        is_playing: bool,
        client_time: float | None = None,
        rtt_ms: float | None = None,
        episode_number: int | None = None,
    ) -> Heartbeat:
        """Report the caller's position; the database answers with its drift and sync level.

        Optionally the send time (``client_time``, ms since 1970), the measured round-trip time
        (``rtt_ms``) and the episode being played: the drift is then corrected for the network
        delay, and another episode is reported as ``episode_mismatch``, not as drift."""

    @rpc(RECORD_HEARTBEATS)
    def record_heartbeats(
        self, room_id: str, heartbeats: Sequence[Mapping[str, Any]]
    ) -> HeartbeatBatch:
        """Service role: many members' heartbeats at once (``user_id``, ``current_time``,
        ``is_playing`` each; optionally ``client_time``, ``rtt_ms``, ``episode_number``)."""

    @rpc(GET_ROOM_SYNC_STATE)
    def get_room_sync_state(self, room_id: str) -> SyncState:
        """The "Live" state: the host's expected position now and the room's sync stats."""

    @rpc(GET_ROOM_EVENTS)
    def get_room_events(
        self,
        room_id: str,
        after_xact_id: str,
        after_event_id: int,
        snapshot: str | None = None,
        limit: int | None = None,
    ) -> RoomEvents:
        """The room's events after a position (start from ``get_room_sync_state``'s
        ``events_position``; then pass back each ``position``), without those the snapshot
        already contains. Members only; events from shortly before the caller joined on."""

    @rpc(GET_ROOM_SYNC_METRICS)
    def get_room_sync_metrics(self, room_id: str) -> SyncMetrics:
        """Drift statistics of the room's recent heartbeats."""

    @rpc(GET_ROOM_SYNC_OPTIONS)
    def get_room_sync_options(self, room_id: str) -> SyncOptions:
        """The room's effective sync options (drift thresholds, wait timeouts, start lead,
        episode countdown; seconds)."""

    @rpc(SET_ROOM_SYNC_OPTIONS)
    def set_room_sync_options(
        self, room_id: str, options: Mapping[str, float | None]
    ) -> SyncOptions:
        """Host only: set some of the room's sync options (seconds; None = back to the project
        default). The three drift thresholds are one set. Returns the effective options."""

    # Group wait and ready check ----------------------------------------------------------

    @rpc(REPORT_PLAYBACK_STATUS)
    def report_playback_status(self, room_id: str, status: str, position: float) -> WaitState:
        """Report ``buffering`` or ``ready`` at ``position``: buffering while the room plays makes
        it wait for the caller until its deadline (first load 60 s, re-buffer 10 s); the ready
        report that leaves nobody blocking resumes it at a scheduled start."""

    @rpc(SET_WAIT_OPT_OUT)
    def set_wait_opt_out(self, room_id: str, opt_out: bool) -> WaitState:
        """Opt out of being waited for (True) or back in (False)."""

    @rpc(FORCE_RESUME)
    def force_resume(self, room_id: str) -> WaitState:
        """Host only: end the room's wait (blockers skipped); ``resumed`` False when it was
        not waiting."""

    @rpc(START_READY_CHECK)
    def start_ready_check(
        self, room_id: str, timeout_seconds: float, min_ready: int | None = None
    ) -> WaitState:
        """Host only: pause until ``min_ready`` members (None: all) are ready or the timeout
        (1 to 3600 s) passes; then playback starts at a scheduled start."""

    @rpc(SET_READY)
    def set_ready(self, room_id: str, ready: bool) -> WaitState:
        """Answer the running ready check. When it has ended (also while this call waited for
        the room), the answer changes nothing and ``ready_check_state`` says how it ended
        (``cancelled`` is not ``expired``), ``answer_counted`` False; Conflict when no check
        ended among the room's last 1000 logged events."""

    @rpc(CANCEL_READY_CHECK)
    def cancel_ready_check(self, room_id: str) -> WaitState:
        """Host only: end the running ready check without starting playback (the room stays
        paused); ``cancelled`` False when none runs (it may just have completed or expired)."""

    # Realtime ----------------------------------------------------------------------------

    @rpc(BROADCAST_TO_ROOM)
    def broadcast_to_room(self, room_id: str, event_type: str, payload: Mapping[str, Any]) -> int:
        """Send a client event (e.g. ``chat_message``) to the room; returns its event id."""

    @rpc(RECORD_REALTIME_METRICS)
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

    @rpc(GET_REALTIME_METRICS_SUMMARY)
    def get_realtime_metrics_summary(
        self, room_id: str, window_minutes: int | None = None
    ) -> RealtimeMetricsSummary:
        """The room's realtime metrics over the last ``window_minutes`` (SQL default 5)."""

    @rpc(REALTIME_HEALTH)
    def realtime_health(self) -> RealtimeHealth:
        """Service role: the realtime health report (publication, delivery, policies, slots)."""

    # Rate limits and maintenance ---------------------------------------------------------

    @rpc(CHECK_RATE_LIMIT)
    def check_rate_limit(
        self,
        user_id: str,
        action: str,
        *,
        window_minutes: int | None = None,
        max_requests: int | None = None,
    ) -> bool:
        """Count one request of an app-defined action; True while within the limit."""

    @rpc(MAINTAIN)
    def maintain(self) -> MaintenanceReport:
        """Service role: run every maintenance job now."""

    @rpc(SYNC_HISTORY_HEALTH)
    def sync_history_health(self) -> dict[str, Any]:
        """Service role: the sync history partitions' report (docs/architecture.md)."""

    @rpc(INSTALL_MAINTENANCE_SCHEDULE)
    def install_maintenance_schedule(self) -> dict[str, Any]:
        """Service role: schedule ``public.maintain()`` with pg_cron (idempotent); the result
        says what was done."""

    @rpc(FORGET_USER)
    def forget_user(self, user_id: str) -> ForgottenUser:
        """Service role: forget a deleted account (memberships, comments, counters)."""

    # Episode queue -----------------------------------------------------------------------

    @rpc(ADD_TO_QUEUE)
    def add_to_queue(
        self,
        room_id: str,
        *,
        anime_id: str,
        anime_title: str,
        episode_number: int,
        video_url: str,
        duration: float,
    ) -> QueueItem:
        """Members: append an episode (``duration`` in seconds) to the room's queue."""

    @rpc(MOVE_QUEUE_ITEM)
    def move_queue_item(self, room_id: str, item_id: int, position: int) -> Queue:
        """Host: move a queued item (not the one playing) to ``position`` (1 = next)."""

    @rpc(REMOVE_QUEUE_ITEM)
    def remove_queue_item(self, room_id: str, item_id: int) -> Queue:
        """Host: remove an item; removing the one playing advances to the next."""

    @rpc(ADVANCE_QUEUE)
    def advance_queue(self, room_id: str, from_item: int | None) -> QueueAdvance:
        """Host: play the next item, if ``from_item`` is still the one playing (None: the
        room's own episode); :class:`~watchium_db.errors.Conflict` otherwise, so two clicks
        never skip two episodes."""

    @rpc(GET_QUEUE)
    def get_queue(self, room_id: str) -> Queue:
        """The room's queue (position 0: the item playing)."""


class Session(Caller, RpcMethods):
    """Typed RPC methods for one caller (see :class:`RpcMethods`)."""

    def _rpc(self, rpc: Rpc[T], values: Mapping[str, Any]) -> T:
        params = rpc.params(values)
        with self.transaction() as conn:
            row = conn.execute(rpc.sql(params), params, prepare=False).fetchone()
        return rpc.parse(row[0] if row else None)

    def _bind(self, method: RpcMethod[P, T]) -> Callable[P, T]:
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return self._rpc(method.rpc, method.arguments(args, kwargs))

        return _described(call, method)


class AsyncSession(AsyncCaller, RpcMethods):
    """The asyncio form of :class:`Session`: every typed method is a coroutine function."""

    async def _rpc(self, rpc: Rpc[T], values: Mapping[str, Any]) -> T:
        params = rpc.params(values)
        async with self.transaction() as conn:
            cur = await conn.execute(rpc.sql(params), params, prepare=False)
            row = await cur.fetchone()
        return rpc.parse(row[0] if row else None)

    def _bind(self, method: RpcMethod[P, T]) -> Callable[P, Awaitable[T]]:
        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self._rpc(method.rpc, method.arguments(args, kwargs))

        return _described(call, method)


# ---------------------------------------------------------------------------------------------
# Clients: the entry points. Given a URL they hold a pool; close them (or use ``with``).
# ---------------------------------------------------------------------------------------------


class Client:
    """The entry point: ``Client(url | connection | pool)`` hands out sessions.

    Given a URL it holds a :class:`psycopg_pool.ConnectionPool` (``min_size`` to ``max_size``
    connections, made with :data:`CONNECTION_KWARGS`) and every call borrows a connection for
    one transaction; :meth:`close` (or leaving a ``with`` block) closes the pool. Given a
    connection or a pool it uses that and closes nothing.

    ``.as_user(user_id)`` acts as a signed-in user (role authenticated), ``.anonymous()`` as the
    anon role without identity, ``.service()`` as service_role (trusted servers only).
    """

    def __init__(
        self,
        source: psycopg.Connection[Any] | _SyncPool | str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
    ) -> None:
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        if isinstance(source, str):
            self._pool = ConnectionPool(
                source,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                kwargs=dict(CONNECTION_KWARGS),
                open=True,
                name="watchium-db",
            )
            self._pool.wait(timeout)  # fail here on a wrong URL, not on the first call
            source = self._pool
        self.source: psycopg.Connection[Any] | _SyncPool = source

    def as_user(self, user_id: str) -> Session:
        return Session(self.source, user_id, "authenticated")

    def anonymous(self) -> Session:
        return Session(self.source, None, "anon")

    def service(self) -> Session:
        return Session(self.source, None, "service_role")

    def close(self) -> None:
        """Close the pool this client made (a given connection or pool stays open)."""
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _OpenOnFirstUse:
    """An asyncio pool opened inside the event loop of its first call."""

    def __init__(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], timeout: float
    ) -> None:
        self.pool = pool
        self.timeout = timeout
        self.opened = False

    async def open(self) -> None:
        if not self.opened:
            await self.pool.open(wait=True, timeout=self.timeout)  # safe to call twice
            self.opened = True

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        await self.open()
        async with self.pool.connection() as conn:
            yield conn


class AsyncClient:
    """The asyncio form of :class:`Client`. Given a URL it holds an
    :class:`psycopg_pool.AsyncConnectionPool`, opened on first use (or by ``async with``) in
    the running event loop, which it then belongs to; ``await close()`` closes it."""

    def __init__(
        self,
        source: psycopg.AsyncConnection[Any] | _AsyncPool | str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
    ) -> None:
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._opener: _OpenOnFirstUse | None = None
        if isinstance(source, str):
            self._pool = AsyncConnectionPool(
                source,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                kwargs=dict(CONNECTION_KWARGS),
                open=False,
                name="watchium-db",
            )
            self._opener = _OpenOnFirstUse(self._pool, timeout)
            source = self._opener
        self.source: psycopg.AsyncConnection[Any] | _AsyncPool = source

    def as_user(self, user_id: str) -> AsyncSession:
        return AsyncSession(self.source, user_id, "authenticated")

    def anonymous(self) -> AsyncSession:
        return AsyncSession(self.source, None, "anon")

    def service(self) -> AsyncSession:
        return AsyncSession(self.source, None, "service_role")

    async def close(self) -> None:
        """Close the pool this client made (a given connection or pool stays open)."""
        if self._pool is not None:
            await self._pool.close()

    async def __aenter__(self) -> AsyncClient:
        if self._opener is not None:
            await self._opener.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
