"""The room events: one definition of every event name and its payload fields.

The SQL functions emit these events (``watchium_private.emit_room_event``); the listener and
clients receive them. ``tests/test_event_catalogue.py`` drives every function that emits and
compares each payload with :data:`EVENTS`, and checks that docs/realtime.md carries exactly
:func:`markdown_table`, so code, this module and the docs cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """A room event: ``fields`` are always in the payload, ``optional`` may be."""

    name: str
    sent_when: str
    fields: tuple[str, ...]
    optional: tuple[str, ...] = ()

    def allows(self, keys: set[str]) -> bool:
        """Whether a payload with exactly ``keys`` matches this definition."""
        return set(self.fields) <= keys <= set(self.fields) | set(self.optional)


COMMENT_FIELDS = (
    "id",
    "anime_id",
    "room_id",
    "episode_number",
    "parent_id",
    "user_id",
    "username",
    "avatar_url",
    "message",
    "video_timestamp",
    "is_anchor",
    "is_system_message",
    "created_at",
    "updated_at",
    "deleted_at",
    "replica_key",
    "hidden_at",
    "hidden_reason",
)

PLAYBACK_FIELDS = (
    "room_id",
    "action",
    "is_playing",
    "current_time",
    "playback_speed",
    "playback_updated_at",
    "episode_number",
    "host_user_id",
)

QUEUE_ITEM_FIELDS = (
    "item_id",
    "position",
    "anime_id",
    "anime_title",
    "episode_number",
    "video_url",
    "duration",
    "added_by",
    "added_by_username",
    "added_at",
)

SYNC_STATUS_FIELDS = (
    "user_id",
    "sync_level",
    "previous_level",
    "is_synced",
    "time_difference",
    "expected_time",
)

SYNC_WAIT_FIELDS = (
    "state",
    "reason",
    "cause",
    "user_id",
    "blocking_members",
    "blocking",
    "skipped",
    "waiting_since",
    "deadline",
    "starts_at",
)

READY_CHECK_FIELDS = (
    "state",
    "user_id",
    "ready",
    "ready_members",
    "needed",
    "deadline",
)

_EVENTS = (
    Event(
        "member_joined",
        "a member joins (is_host is true for the creator and for the first joiner of an empty "
        "room, who becomes host)",
        ("user_id", "username", "avatar_url", "is_host", "joined_at"),
    ),
    Event(
        "member_left",
        "a member leaves (reason left) or maintenance removes it as stale (reason stale)",
        ("user_id", "reason"),
    ),
    Event(
        "member_kicked",
        "a member is removed by someone with the kick permission (the host by default)",
        ("user_id", "kicked_by"),
    ),
    Event(
        "host_changed",
        "the host changes: transfer_host, the host leaving or removed as stale (the "
        "longest-present member takes over), or the first joiner of an empty room "
        "(previous_host_user_id: the host before, null when there was none)",
        ("host_user_id", "host_username", "previous_host_user_id"),
    ),
    Event(
        "room_updated",
        "update_room changed the title, episode, video URL or privacy, or rotated the key, or "
        "set_room_sync_options changed the room's sync options (sync_options: the changed "
        "options' new effective values, seconds), or set_room_join_policy changed the join "
        "policy in force (join_policy: open, key or approval) (only the changed fields are sent)",
        (),
        (
            "title",
            "episode_number",
            "video_url",
            "is_public",
            "access_key_rotated",
            "sync_options",
            "join_policy",
        ),
    ),
    Event(
        "room_deleted",
        "the room is gone: deleted by its host (reason deleted_by_host, deleted_by) or closed "
        "by maintenance when empty (reason empty)",
        ("reason",),
        ("deleted_by",),
    ),
    Event("comment_added", "a comment in the room (system messages included)", COMMENT_FIELDS),
    Event("comment_edited", "the author edited a comment of the room", COMMENT_FIELDS),
    Event(
        "comment_deleted",
        "a comment of the room was deleted (tombstone true: kept as a tombstone for its replies)",
        ("id", "tombstone"),
    ),
    Event(
        "playback",
        "the host or a co-host plays, pauses, seeks or changes speed (action play, pause, seek, "
        "speed; controlled_by: who), changes the episode with update_room (action episode: "
        "paused at 0), or the queue advances (action episode: the next item from 0, still "
        "playing if the room was; action pause when the queue ran out); the room starts "
        "waiting (action wait: paused at the expected position) or stops (action resume: "
        "playing from `playback_updated_at`, a scheduled start in the future)",
        PLAYBACK_FIELDS,
        ("controlled_by",),
    ),
    Event(
        "sync_wait",
        "the room waits for buffering members: state waiting when a member starts or stops "
        "blocking or is skipped at its deadline (cause buffering, ready, deadline, opt_out), "
        "state resumed when the wait ends (cause reports, deadline, host, opt_out, ready), "
        "state cancelled when the host ends it without playing (pause, cancel_ready_check); "
        "`blocking`: the first 50 blockers, `skipped`: members no longer waited for",
        SYNC_WAIT_FIELDS,
    ),
    Event(
        "ready_check",
        "a ready check changes: started (the host), updated (a member answered set_ready), "
        "completed (enough members ready: playback starts), expired (deadline: playback "
        "starts), forced (force_resume, or the host's play), cancelled (cancel_ready_check, or "
        "the host's pause: the room stays paused)",
        READY_CHECK_FIELDS,
    ),
    Event(
        "sync_status",
        "a member's sync level changes at a heartbeat (never for one that changes nothing); "
        "level wrong_episode (reason wrong_episode, time_difference null) when it plays another "
        "episode than the room's",
        SYNC_STATUS_FIELDS,
        ("reason",),
    ),
    Event(
        "queue_item_added",
        "a member added an episode to the room's queue (the item)",
        QUEUE_ITEM_FIELDS,
    ),
    Event(
        "queue_item_moved",
        "the host moved a queued item (the items between shift by one)",
        ("item_id", "from_position", "to_position", "moved_by"),
    ),
    Event(
        "queue_item_removed",
        "the host removed a queued item (removing the one playing also advances the queue)",
        ("item_id", "position", "removed_by"),
    ),
    Event(
        "queue_advanced",
        "the queue advanced: advance_queue (reason advance), its current item over (reason auto, "
        "advanced_by null) or removed (reason removed); item: the item now playing, null when "
        "the queue ran out",
        ("from_item_id", "item", "reason", "advanced_by"),
    ),
    Event(
        "play",
        "custom event from the host via broadcast_to_room",
        ("current_time", "user_id", "username"),
    ),
    Event(
        "pause",
        "custom event from the host via broadcast_to_room",
        ("current_time", "user_id", "username"),
    ),
    Event(
        "seek",
        "custom event from the host via broadcast_to_room",
        ("current_time", "user_id", "username"),
    ),
    Event(
        "chat_message",
        "custom event from a member via broadcast_to_room",
        ("message", "user_id", "username"),
    ),
    Event(
        "member_role_changed",
        "set_member_role gave a member another role (co_host, member or viewer)",
        ("user_id", "role", "previous_role", "changed_by"),
    ),
    Event(
        "room_permission_changed",
        "set_room_permission changed the minimum role of a permission in the room",
        ("permission", "min_role", "previous_min_role", "changed_by"),
    ),
    Event(
        "member_banned",
        "ban_member, or kick_member with a ban (ends_at null: for good); a member is then "
        "removed (member_kicked follows)",
        ("user_id", "banned_by", "ends_at"),
    ),
    Event("member_unbanned", "unban_member lifted a ban in force", ("user_id", "unbanned_by")),
    Event(
        "member_muted",
        "mute_member muted a member (ends_at null: until unmuted); never for a shadow mute",
        ("user_id", "muted_by", "ends_at"),
    ),
    Event(
        "member_unmuted",
        "unmute_member lifted a mute in force (never for a shadow mute)",
        ("user_id", "unmuted_by"),
    ),
    Event(
        "comments_hidden",
        "hide_member_comments hid the room comments of a kicked, banned or departed user",
        ("user_id", "hidden_by", "count"),
    ),
    Event(
        "join_requested",
        "request_to_join made a new request to join an approval room (never the message)",
        ("user_id", "username"),
    ),
    Event(
        "join_request_answered",
        "answer_join_request answered a pending request (not how: an accepted user's "
        "member_joined follows when it joins)",
        ("user_id", "answered_by"),
    ),
    Event(
        "join_request_withdrawn",
        "withdraw_join_request: the requester withdrew a pending or accepted (unused) request",
        ("user_id",),
    ),
)

EVENTS: dict[str, Event] = {event.name: event for event in _EVENTS}

TABLE_BEGIN = "<!-- event catalogue: generated from watchium_db/events.py -->"
TABLE_END = "<!-- end of event catalogue -->"


def markdown_table() -> str:
    """The event catalogue of docs/realtime.md, between its markers."""

    def fields(event: Event) -> str:
        if event.fields == COMMENT_FIELDS:
            return "the comment row (all columns of `public.comments`)"
        listed = ", ".join(f"`{f}`" for f in event.fields) or "—"
        if event.optional:
            listed += "; when present: " + ", ".join(f"`{f}`" for f in event.optional)
        return listed

    lines = [
        TABLE_BEGIN,
        "| event | sent when | payload fields |",
        "|---|---|---|",
        *(f"| `{e.name}` | {e.sent_when} | {fields(e)} |" for e in _EVENTS),
        TABLE_END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
