"""SQLAlchemy 2.0 typed models of watchium-db's tables.

They mirror the migrations exactly (names of constraints and indexes included) so that
``alembic check`` reports no drift, and they are for reading: writes go through the SQL
functions, which check identity, authority and rate limits. Clients (anon, authenticated) have
no write privileges on these tables at all.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

PRIVATE = "watchium_private"

#: The naming convention of the migrations, for anything declared without an explicit name.
NAMING_CONVENTION = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

Timestamp = TIMESTAMP(timezone=True)


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id type."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


# Reflection (alembic check, autogenerate) reads xid8 columns as Xid8 instead of warning and
# skipping them.
ischema_names.setdefault("xid8", Xid8)


VideoTime = Numeric(10, 2)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: Text,
        int: Integer,
        bool: Boolean,
        Decimal: VideoTime,
        dt.datetime: Timestamp,
    }


def _now() -> Any:
    return text("now()")


# ---------------------------------------------------------------------------------------------
# public: the tables clients read through row-level security
# ---------------------------------------------------------------------------------------------
class Room(Base):
    """One watch party and its playback state."""

    __tablename__ = "rooms"
    __table_args__ = (
        Index(
            "rooms_public_last_activity_idx",
            text("last_activity DESC"),
            text("room_id DESC"),
            postgresql_where=text("is_public"),
        ),
        Index(
            "rooms_anime_id_last_activity_idx",
            "anime_id",
            text("last_activity DESC"),
            text("room_id DESC"),
            postgresql_where=text("is_public"),
        ),
        Index("rooms_replica_key_idx", "replica_key", unique=True),
        Index(
            "rooms_queue_advance_idx",
            "room_id",
            postgresql_where=text("queue_advance_after IS NOT NULL"),
        ),
    )

    room_id: Mapped[str] = mapped_column(primary_key=True)
    title: Mapped[str]
    anime_id: Mapped[str]
    anime_title: Mapped[str]
    episode_number: Mapped[int]
    video_url: Mapped[str]
    source_id: Mapped[str | None]
    host_user_id: Mapped[str | None]
    host_username: Mapped[str | None]
    is_public: Mapped[bool] = mapped_column(server_default=text("true"))
    current_playback_time: Mapped[Decimal] = mapped_column(server_default=text("0"))
    is_playing: Mapped[bool] = mapped_column(server_default=text("false"))
    playback_speed: Mapped[Decimal] = mapped_column(Numeric(4, 2), server_default=text("1.00"))
    playback_updated_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    last_activity: Mapped[dt.datetime] = mapped_column(server_default=_now())
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    #: Random; the replica identity, so a published DELETE carries nothing about the room.
    replica_key: Mapped[uuid.UUID] = mapped_column(server_default=text("gen_random_uuid()"))
    #: Room sync options (seconds); null follows the project default (settings ``sync_*``).
    #: Read the effective values with ``get_room_sync_options``.
    sync_drift_perfect: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    sync_drift_good: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    sync_drift_minor: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    sync_first_load_timeout: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    sync_rebuffer_timeout: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    sync_min_start_lead: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    sync_episode_countdown: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    #: The queue item playing (RoomQueueItem at position 0), or None (revision 0013).
    queue_item_id: Mapped[int | None] = mapped_column(BigInteger)
    #: The current item's duration plus the grace: past it the queue advances.
    queue_advance_after: Mapped[Decimal | None]
    #: Waiting state (group wait for buffering members, ready check); see docs/sync.md.
    waiting_since: Mapped[dt.datetime | None]
    waiting_reason: Mapped[str | None]
    sync_deadline: Mapped[dt.datetime | None]
    ready_check_min_ready: Mapped[int | None]
    #: How non-members get in: None follows visibility (public: open, private: key), or
    #: ``open``, ``key``, ``approval`` (revision 0026; set with ``set_room_join_policy``).
    join_policy: Mapped[str | None]


class RoomMember(Base):
    """Who is in a room; exactly one member of a non-empty room is the host."""

    __tablename__ = "room_members"
    __table_args__ = (
        PrimaryKeyConstraint("room_id", "user_id", name="room_members_pkey"),
        Index(
            "room_members_one_host_idx",
            "room_id",
            unique=True,
            postgresql_where=text("is_host"),
        ),
        Index("room_members_room_id_joined_at_idx", "room_id", "joined_at", "user_id"),
        Index("room_members_user_id_idx", "user_id", "room_id"),
        Index("room_members_replica_key_idx", "replica_key", unique=True),
    )

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="room_members_room_id_fkey")
    )
    user_id: Mapped[str]
    username: Mapped[str]
    avatar_url: Mapped[str | None]
    is_host: Mapped[bool] = mapped_column(server_default=text("false"))
    is_synced: Mapped[bool] = mapped_column(server_default=text("true"))
    current_playback_time: Mapped[Decimal] = mapped_column(server_default=text("0"))
    last_heartbeat: Mapped[dt.datetime] = mapped_column(server_default=_now())
    joined_at: Mapped[dt.datetime] = mapped_column(server_default=text("clock_timestamp()"))
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    #: Random; the replica identity, so a published DELETE carries neither room nor user.
    replica_key: Mapped[uuid.UUID] = mapped_column(server_default=text("gen_random_uuid()"))
    #: host, co_host, member or viewer; 'host' exactly when is_host.
    role: Mapped[str] = mapped_column(server_default=text("'member'::text"))


class Comment(Base):
    """A comment of an episode thread, optionally tied to a room and a video time."""

    __tablename__ = "comments"
    __table_args__ = (
        Index(
            "comments_one_anchor_idx",
            "anime_id",
            "episode_number",
            unique=True,
            postgresql_where=text("is_anchor"),
        ),
        Index(
            "comments_anime_id_episode_number_created_at_idx",
            "anime_id",
            "episode_number",
            text("created_at DESC"),
            text("id DESC"),
        ),
        Index(
            "comments_room_id_created_at_idx",
            "room_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("room_id IS NOT NULL"),
        ),
        Index(
            "comments_parent_id_idx",
            "parent_id",
            postgresql_where=text("parent_id IS NOT NULL"),
        ),
        Index("comments_replica_key_idx", "replica_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    anime_id: Mapped[str]
    room_id: Mapped[str | None] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="comments_room_id_fkey")
    )
    episode_number: Mapped[int]
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger,
        ForeignKey("comments.id", ondelete="RESTRICT", name="comments_parent_id_fkey"),
    )
    user_id: Mapped[str | None]
    username: Mapped[str]
    avatar_url: Mapped[str | None]
    message: Mapped[str]
    video_timestamp: Mapped[Decimal | None]
    is_anchor: Mapped[bool] = mapped_column(server_default=text("false"))
    is_system_message: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    #: Set when the author deleted a comment that has replies (a tombstone: empty message).
    deleted_at: Mapped[dt.datetime | None]
    #: Random; the replica identity, so a published DELETE carries nothing about the comment.
    replica_key: Mapped[uuid.UUID] = mapped_column(server_default=text("gen_random_uuid()"))
    #: Hidden from everyone but the author (a shadow mute, or moderation); null: visible.
    hidden_at: Mapped[dt.datetime | None]
    #: shadow_muted or moderated; null exactly when hidden_at is null.
    hidden_reason: Mapped[str | None]


class RoomQueueItem(Base):
    """An episode in a room's queue: position 0 plays, 1..n follow (revision 0013)."""

    __tablename__ = "room_queue"
    __table_args__ = (
        UniqueConstraint(
            "room_id",
            "position",
            name="room_queue_position_key",
            deferrable=True,
            initially="IMMEDIATE",
        ),
        Index("room_queue_room_id_added_by_idx", "room_id", "added_by"),
    )

    item_id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="room_queue_room_id_fkey")
    )
    position: Mapped[int]
    anime_id: Mapped[str]
    anime_title: Mapped[str]
    episode_number: Mapped[int]
    video_url: Mapped[str]
    duration: Mapped[Decimal]
    added_by: Mapped[str | None]
    added_by_username: Mapped[str]
    added_at: Mapped[dt.datetime] = mapped_column(server_default=_now())


class SyncState(Base):
    """One sync measurement (partitioned by hour on created_at).

    Append-only history without a primary key (revision 0002): rows are never updated or
    addressed one by one. The mapper still needs an identity to load rows, so it uses
    (room_id, host_time, created_at); it is not unique in the table (two records written in
    one transaction share created_at), so load history read-only, never to update it. Two
    shapes of row: one member's record (``user_id`` …) or a host control's snapshot of every
    member (``member_ids`` / ``member_times``); view ``public.sync_records`` unnests both.
    """

    __tablename__ = "sync_states"
    __table_args__ = (
        Index("sync_states_room_id_created_at_idx", "room_id", text("created_at DESC")),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    room_id: Mapped[str]
    user_id: Mapped[str | None]
    host_time: Mapped[Decimal]
    member_time: Mapped[Decimal | None]
    time_difference: Mapped[Decimal | None]
    is_synced: Mapped[bool | None]
    sync_event_type: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    member_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    member_times: Mapped[list[Decimal] | None] = mapped_column(ARRAY(VideoTime))

    __mapper_args__ = {"primary_key": ["room_id", "host_time", "created_at"]}  # noqa: RUF012


# ---------------------------------------------------------------------------------------------
# watchium_private: internals (no client privileges)
# ---------------------------------------------------------------------------------------------
class RoomSecret(Base):
    """The access key of a private room."""

    __tablename__ = "room_secrets"
    __table_args__ = ({"schema": PRIVATE},)

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="room_secrets_room_id_fkey"),
        primary_key=True,
    )
    access_key: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    wrong_attempts: Mapped[int] = mapped_column(server_default=text("0"))


class RoomPermission(Base):
    """A room's override of a permission's minimum role."""

    __tablename__ = "room_permissions"
    __table_args__ = (PrimaryKeyConstraint("room_id", "permission", name="room_permissions_pkey"),)

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="room_permissions_room_id_fkey")
    )
    permission: Mapped[str] = mapped_column(
        ForeignKey(
            f"{PRIVATE}.room_permission_catalogue.permission",
            name="room_permissions_permission_fkey",
        )
    )
    min_role: Mapped[str]
    updated_by: Mapped[str | None]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=_now())


class RoomBan(Base):
    """A user banned from a room, until ends_at or for good."""

    __tablename__ = "room_bans"
    __table_args__ = (
        PrimaryKeyConstraint("room_id", "user_id", name="room_bans_pkey"),
        Index("room_bans_ends_at_idx", "ends_at", postgresql_where=text("ends_at IS NOT NULL")),
        {"schema": PRIVATE},
    )

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="room_bans_room_id_fkey")
    )
    user_id: Mapped[str]
    banned_by: Mapped[str | None]
    reason: Mapped[str | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    ends_at: Mapped[dt.datetime | None]


class RoomMute(Base):
    """A member muted in a room (optionally shadow), until ends_at or until unmuted."""

    __tablename__ = "room_mutes"
    __table_args__ = (
        PrimaryKeyConstraint("room_id", "user_id", name="room_mutes_pkey"),
        Index("room_mutes_ends_at_idx", "ends_at", postgresql_where=text("ends_at IS NOT NULL")),
        {"schema": PRIVATE},
    )

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="room_mutes_room_id_fkey")
    )
    user_id: Mapped[str]
    muted_by: Mapped[str | None]
    reason: Mapped[str | None]
    shadow: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    ends_at: Mapped[dt.datetime | None]


class RoomJoinRequest(Base):
    """A request to join an approval room: pending, approved (admits once) or refused."""

    __tablename__ = "room_join_requests"
    __table_args__ = (
        PrimaryKeyConstraint("room_id", "user_id", name="room_join_requests_pkey"),
        Index("room_join_requests_user_id_idx", "user_id"),
        {"schema": PRIVATE},
    )

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.room_id", ondelete="CASCADE", name="room_join_requests_room_id_fkey")
    )
    user_id: Mapped[str]
    username: Mapped[str]
    message: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default=text("'pending'::text"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    answered_by: Mapped[str | None]
    answered_at: Mapped[dt.datetime | None]


class RoomPermissionCatalogue(Base):
    """Every room permission and its default minimum role."""

    __tablename__ = "room_permission_catalogue"
    __table_args__ = ({"schema": PRIVATE},)

    permission: Mapped[str] = mapped_column(primary_key=True)
    default_min_role: Mapped[str]
    description: Mapped[str]


class MemberPresence(Base):
    """The hot presence row of a member, written by heartbeats."""

    __tablename__ = "member_presence"
    __table_args__ = (
        PrimaryKeyConstraint("room_id", "user_id", name="member_presence_pkey"),
        ForeignKeyConstraint(
            ["room_id", "user_id"],
            ["room_members.room_id", "room_members.user_id"],
            ondelete="CASCADE",
            name="member_presence_room_id_user_id_fkey",
        ),
        {"schema": PRIVATE, "postgresql_with": {"fillfactor": 70}},
    )

    room_id: Mapped[str]
    user_id: Mapped[str]
    last_heartbeat: Mapped[dt.datetime] = mapped_column(server_default=_now())
    reported_time: Mapped[Decimal] = mapped_column(server_default=text("0"))
    is_playing: Mapped[bool] = mapped_column(server_default=text("false"))
    time_difference: Mapped[Decimal | None]
    sync_level: Mapped[str | None]
    previous_sync_level: Mapped[str | None]
    last_sample_at: Mapped[dt.datetime | None]
    rtt_ms: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    clock_offset_ms: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    reported_episode: Mapped[int | None]


class MemberPlayback(Base):
    """A member's last buffering/ready report, wait deadline, opt-out and ready answer."""

    __tablename__ = "member_playback"
    __table_args__ = (
        PrimaryKeyConstraint("room_id", "user_id", name="member_playback_pkey"),
        ForeignKeyConstraint(
            ["room_id", "user_id"],
            ["room_members.room_id", "room_members.user_id"],
            ondelete="CASCADE",
            name="member_playback_room_id_user_id_fkey",
        ),
        {"schema": PRIVATE},
    )

    room_id: Mapped[str]
    user_id: Mapped[str]
    status: Mapped[str] = mapped_column(server_default=text("'ready'::text"))
    reported_time: Mapped[Decimal] = mapped_column(server_default=text("0"))
    status_since: Mapped[dt.datetime] = mapped_column(server_default=_now())
    wait_deadline: Mapped[dt.datetime | None]
    skipped_at: Mapped[dt.datetime | None]
    late_joiner: Mapped[bool] = mapped_column(server_default=text("false"))
    loaded_at: Mapped[dt.datetime | None]
    wait_opt_out: Mapped[bool] = mapped_column(server_default=text("false"))
    ready_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=_now())


class Setting(Base):
    """A tunable of the package."""

    __tablename__ = "settings"
    __table_args__ = ({"schema": PRIVATE},)

    key: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    description: Mapped[str]


class RateLimitRule(Base):
    """The default limit of one RPC action."""

    __tablename__ = "rate_limit_rules"
    __table_args__ = ({"schema": PRIVATE},)

    action: Mapped[str] = mapped_column(primary_key=True)
    max_requests: Mapped[int]
    window_minutes: Mapped[int]
    description: Mapped[str]


class RateLimitCounter(Base):
    """Requests of one subject and action in one fixed window."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (
        PrimaryKeyConstraint(
            "subject", "action", "window_minutes", "window_start", name="rate_limit_counters_pkey"
        ),
        Index("rate_limit_counters_window_start_idx", "window_start"),
        {"schema": PRIVATE, "postgresql_with": {"fillfactor": 80}},
    )

    subject: Mapped[str]
    action: Mapped[str]
    window_minutes: Mapped[int]
    window_start: Mapped[dt.datetime]
    request_count: Mapped[int]


class RoomEvent(Base):
    """A room event in the catch-up log."""

    __tablename__ = "room_events"
    __table_args__ = (
        Index("room_events_room_id_event_id_idx", "room_id", "event_id"),
        Index("room_events_created_at_idx", "created_at"),
        {"schema": PRIVATE},
    )

    event_id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    room_id: Mapped[str]
    event: Mapped[str]
    payload: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=_now())
    xact_id: Mapped[int] = mapped_column(Xid8(), server_default=text("pg_current_xact_id()"))


class RoomEventsExpired(Base):
    """Per room, the highest log position that trimming deleted (listeners behind it are told)."""

    __tablename__ = "room_events_expired"
    __table_args__ = ({"schema": PRIVATE},)

    room_id: Mapped[str] = mapped_column(primary_key=True)
    xact_id: Mapped[int] = mapped_column(Xid8())
    event_id: Mapped[int] = mapped_column(BigInteger)
    expired_at: Mapped[dt.datetime] = mapped_column(server_default=_now())


class RealtimeMetric(Base):
    """One client's report of its realtime connection (the seed's RealtimeMonitor)."""

    __tablename__ = "realtime_metrics"
    __table_args__ = (
        Index("realtime_metrics_room_id_recorded_at_idx", "room_id", text("recorded_at DESC")),
        Index("realtime_metrics_recorded_at_idx", "recorded_at"),
        {"schema": PRIVATE},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    room_id: Mapped[str]
    user_id: Mapped[str]
    active_connections: Mapped[int]
    total_events: Mapped[int] = mapped_column(BigInteger)
    avg_latency_ms: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    error_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    recorded_at: Mapped[dt.datetime] = mapped_column(server_default=_now())


__all__ = [
    "Base",
    "Comment",
    "MemberPresence",
    "RateLimitCounter",
    "RateLimitRule",
    "RealtimeMetric",
    "Room",
    "RoomEvent",
    "RoomMember",
    "RoomSecret",
    "Setting",
    "SyncState",
]
