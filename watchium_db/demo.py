"""``watchium-db demo``: a watch party played out with the real functions over real connections.

A host and four members, one private room (joined with its access key, after one wrong try) and
one public room. The host plays, seeks and changes speed; members report heartbeats from their
own simulated players (one drifts slowly, one buffers: it reports buffering, the room waits for
it, and its ready report resumes the room at a scheduled start) and the database answers with
each member's drift and sync level; members who fell behind catch up with the "Live" button, i.e.
``get_room_sync_state``'s ``expected_time``. Someone chats (``post_comment`` and a
``chat_message`` broadcast), a member goes silent and maintenance removes it as stale, a co-host
pauses, the host starts a ready check that a member answers and then cancels it (the room stays
paused), the host leaves and the host role moves on. In the public room, members queue two
episodes and the first, a 2-second clip, ends: the queue advances by itself (maintenance applies
it); the host then makes the public room join by approval, and accepts a member's request. Two
:class:`~watchium_db.listener.RoomListener` streams receive the private room's events on the
side: the database's and the members' broadcasts.

Python only plays the users' video players (a position advancing with the clock). Every decision
— drift, sync level, authority, host hand-over, staleness — is the database's answer.

The stale member: ``member_stale_after`` is 30 s by default, too long for a demo, so the demo
ages that member's presence row by the setting's interval plus 5 s, as the database owner. It
changes no setting, so other sessions of the same database are unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from watchium_db.client import AsyncClient, AsyncSession, Heartbeat
from watchium_db.errors import Forbidden
from watchium_db.listener import RoomEvent, RoomListener

SYNC_STYLE = {
    "perfect": "green",
    "good": "green",
    "minor_drift": "yellow",
    "out_of_sync": "red",
    "wrong_episode": "magenta",
}


@dataclass
class Player:
    """One member's video player as the app would run it; the only thing Python simulates."""

    user_id: str
    name: str
    session: AsyncSession
    rate: float = 1.0  # how fast this player really plays relative to the room speed
    position: float = 0.0
    playing: bool = False
    speed: float = 1.0
    buffering: bool = False
    silent: bool = False  # stopped sending heartbeats (closed the laptop)
    last: Heartbeat | None = None
    status: str = "joined"
    rtt_ms: float | None = None  # the round-trip time its app measured, sent with heartbeats
    episode: int | None = None  # the episode its player has loaded, sent with heartbeats
    role: str = "member"
    clock: float = field(default_factory=time.monotonic)

    def advance(self) -> None:
        """Move the player on by the real time elapsed since the last look."""
        now = time.monotonic()
        if self.playing and not self.buffering:
            self.position += (now - self.clock) * self.speed * self.rate
        self.clock = now

    def jump(self, position: float, playing: bool, speed: float) -> None:
        """Apply the room's state (after a seek, a speed change, or the Live button)."""
        self.position, self.playing, self.speed = position, playing, speed
        self.clock = time.monotonic()


@dataclass
class Party:
    run_id: str
    url: str
    console: Console
    fast: bool
    tick: float
    ticks: int
    private_room: str = ""
    public_room: str = ""
    players: dict[str, Player] = field(default_factory=dict)
    events: list[RoomEvent] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    host: str = ""
    wrong_episode_reports: int = 0

    def say(self, text: str) -> None:
        self.log.append(text)

    # -- rendering -------------------------------------------------------------------------
    def render(self) -> Group:
        table = Table(title=f"room {self.private_room} (private)", expand=True)
        for col in ("member", "role", "position", "drift", "sync level", "status"):
            table.add_column(col)
        for p in self.players.values():
            hb = p.last
            level = hb.sync_level if hb else "—"
            table.add_row(
                p.name,
                "host" if p.user_id == self.host else p.role,
                f"{p.position:7.2f}",
                f"{hb.time_difference:5.2f}" if hb and hb.time_difference is not None else "—",
                f"[{SYNC_STYLE.get(level, 'white')}]{level}[/]",
                p.status,
            )
        recent = [f"#{e.event_id} {e.event} {_brief(e.payload)}" for e in self.events[-10:]]
        events = Panel("\n".join(recent) or "…", title=f"listener: {len(self.events)} events")
        story = Panel("\n".join(self.log[-8:]) or "…", title="what happens")
        return Group(table, events, story)


def _brief(payload: dict[str, Any]) -> str:
    keys = ("user_id", "message", "is_playing", "current_time", "playback_speed", "new_host")
    parts = [f"{k}={payload[k]}" for k in keys if k in payload]
    return " ".join(parts)[:70]


async def _listen(listener: RoomListener, party: Party) -> None:
    async for event in listener:
        party.events.append(event)


async def _heartbeats(party: Party) -> None:
    """Every member that is not silent reports its player's position; the database judges."""
    live = [p for p in party.players.values() if not p.silent]
    for p in live:
        p.advance()
    results = await asyncio.gather(
        *(
            p.session.record_heartbeat(
                party.private_room, p.position, p.playing, rtt_ms=p.rtt_ms, episode_number=p.episode
            )
            for p in live
        )
    )
    for p, hb in zip(live, results, strict=True):
        p.last = hb
        if hb.episode_mismatch:
            party.wrong_episode_reports += 1


async def _catch_up(party: Party, p: Player) -> None:
    """The "Live" button: jump to where the database says the host is now."""
    state = await p.session.get_room_sync_state(party.private_room)
    p.jump(state.expected_time, state.is_playing, state.playback_speed)
    p.buffering = False
    p.rate = 1.0
    p.status = "caught up (Live)"


async def _follow(party: Party) -> None:
    """Members apply the host's change, as their app does on receiving the event."""
    for p in party.players.values():
        if not p.silent and not p.buffering:
            state = await p.session.get_room_sync_state(party.private_room)
            p.jump(state.expected_time, state.is_playing, state.playback_speed)


async def run(url: str, *, fast: bool, seconds: float | None, console: Console) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    tick = 1.1 if fast else 2.0  # heartbeat_min_interval is 1 s
    total = seconds if seconds is not None else (12.0 if fast else 40.0)
    party = Party(run_id, url, console, fast, tick, max(10, int(total / tick)))
    client = AsyncClient(url)
    started = time.monotonic()

    def uid(name: str) -> str:
        return f"demo-{run_id}-{name.lower()}"

    names = ["Hana", "Mika", "Ren", "Sora", "Yuki"]
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in names]
    try:
        sessions = {n: AsyncClient(c).as_user(uid(n)) for n, c in zip(names, conns, strict=True)}
        hana = sessions["Hana"]
        anime, episode, video = "demo-frieren", 1, "https://example.com/frieren/1.m3u8"
        private = await hana.create_room(
            title=f"Friday night {run_id}", anime_id=anime, anime_title="Frieren",
            episode_number=episode, video_url=video, username="Hana", is_public=False,
        )  # fmt: skip
        public = await hana.create_room(
            title=f"Open watch {run_id}", anime_id=anime, anime_title="Frieren",
            episode_number=episode, video_url=video, username="Hana",
        )  # fmt: skip
        party.private_room, party.public_room = private.room.room_id, public.room.room_id
        party.host = uid("Hana")
        party.players[uid("Hana")] = Player(uid("Hana"), "Hana", hana, status="host")
        party.say(f"Hana created private room {party.private_room} (key {private.access_key})")
        party.say(f"Hana created public room {party.public_room}")

        # Two streams: the database's events, and what members send each other.
        listener = RoomListener(url, party.private_room, poll_interval=0.2)
        chat = RoomListener(url, party.private_room, stream="members", poll_interval=0.2)
        listen_tasks = [
            asyncio.create_task(_listen(listener, party)),
            asyncio.create_task(_listen(chat, party)),
        ]
        for _ in range(100):  # the listeners see events committed after they connect
            if listener.backend_pid is not None and chat.backend_pid is not None:
                break
            await asyncio.sleep(0.05)

        with Live(party.render(), console=console, refresh_per_second=8, transient=False) as live:

            async def step() -> None:
                await asyncio.sleep(party.tick)
                await _heartbeats(party)
                live.update(party.render())

            wrong = await sessions["Mika"].join_room(
                party.private_room, access_key="000000", username="Mika"
            )
            party.say(f"Mika tried a wrong key: {wrong.status}, {wrong.attempts_left} left")
            for n in names[1:]:
                joined = await sessions[n].join_room(
                    party.private_room, access_key=private.access_key, username=n
                )
                party.players[uid(n)] = Player(uid(n), n, sessions[n], status=joined.status)
            for n in ("Ren", "Yuki"):
                await sessions[n].join_room(party.public_room, username=n)
            party.say("Mika, Ren, Sora and Yuki joined; Ren and Yuki also joined the public room")
            await hana.change_playback_state(party.public_room, True, 0)
            # The public room's queue: a 2-second clip, then the next episode. Hana starts the
            # queue; the clip's end (plus the 2 s grace) is left to the database.
            clip = await sessions["Ren"].add_to_queue(
                party.public_room, anime_id=anime, anime_title="Frieren", episode_number=2,
                video_url="https://example.com/frieren/2-preview.m3u8", duration=2,
            )  # fmt: skip
            await sessions["Yuki"].add_to_queue(
                party.public_room, anime_id=anime, anime_title="Frieren", episode_number=3,
                video_url="https://example.com/frieren/3.m3u8", duration=1440,
            )  # fmt: skip
            started_queue = await hana.advance_queue(party.public_room, None)
            first = started_queue.item.episode_number if started_queue.item else "?"
            party.say(
                f"Ren and Yuki queued episodes 2 and 3 in the public room; Hana started the"
                f" queue: episode {first} ({clip.duration:.0f} s) plays"
            )
            live.update(party.render())

            # Play ---------------------------------------------------------------------------
            group_wait: dict[str, bool] = {
                "waited": False,
                "resumed": False,
                "scheduled_start": False,
            }
            await hana.change_playback_state(party.private_room, True, 0)
            for p in party.players.values():
                p.jump(0.0, True, 1.0)
            party.say("Hana pressed play")
            yuki = party.players[uid("Yuki")]
            yuki.rtt_ms, yuki.episode = 240.0, episode  # a far-away member: lag is not drift
            party.say("Yuki is on a slow network (240 ms round trip, sent with heartbeats)")
            party.players[uid("Ren")].rate = 0.6  # a slow device: drifts behind
            party.players[uid("Ren")].status = "slow device"
            ticks = party.ticks
            for i in range(ticks):
                if i == 1:
                    mika = party.players[uid("Mika")]
                    mika.advance()
                    mika.buffering = True
                    mika.status = "buffering"
                    waiting = await mika.session.report_playback_status(
                        party.private_room, "buffering", round(mika.position, 2)
                    )
                    wait = waiting.waiting
                    party.say(
                        f"Mika's video is buffering: the room {wait['state']} for"
                        f" {wait['blocking_members']} member(s) (excused at {wait['deadline']})"
                    )
                    await _follow(party)  # everyone pauses at the frozen position
                    group_wait["waited"] = wait["state"] == "waiting"
                if i == 2:
                    mika = party.players[uid("Mika")]
                    mika.buffering = False
                    mika.status = "loaded"
                    resumed = await mika.session.report_playback_status(
                        party.private_room, "ready", round(mika.position, 2)
                    )
                    starts = resumed.playback_updated_at
                    lead = (starts - datetime.now(UTC)).total_seconds() * 1000 if starts else None
                    party.say(
                        f"Mika is ready: the room resumes at a scheduled start"
                        f" ({resumed.current_time:.1f} s, in about {lead or 0:.0f} ms)"
                    )
                    await _follow(party)
                    group_wait["resumed"] = resumed.waiting["state"] in ("scheduled", "playing")
                    group_wait["scheduled_start"] = resumed.waiting["state"] == "scheduled"
                if i == ticks // 4:
                    st = await hana.seek_to_time(party.private_room, 120)
                    party.say(f"Hana seeked to {st.current_time:.0f} s")
                    await _follow(party)
                if i == 2:
                    party.players[uid("Sora")].episode = episode + 1
                    party.players[uid("Sora")].status = "next episode loaded"
                    party.say("Sora's player loaded the next episode by mistake")
                if i == 3:
                    sora = party.players[uid("Sora")]
                    seen = sora.last.sync_level if sora.last else None
                    sora.episode, sora.status = episode, "back on the episode"
                    party.say(f"the database said {seen} for Sora, not drift; Sora went back")
                if i == ticks // 3:
                    st = await hana.set_playback_speed(party.private_room, 1.5)
                    party.say(f"Hana set speed {st.playback_speed}x")
                    await _follow(party)
                if i == ticks // 2:
                    for n in ("Mika", "Ren"):
                        p = party.players[uid(n)]
                        drift = p.last.time_difference if p.last else 0.0
                        await _catch_up(party, p)
                        party.say(f"{n} pressed Live ({drift:.1f} s behind)")
                    comment = await sessions["Yuki"].post_comment(
                        message="that spell animation!", username="Yuki",
                        room_id=party.private_room, video_timestamp=round(
                            party.players[uid("Yuki")].position, 2), anime_id=anime,
                        episode_number=episode,
                    )  # fmt: skip
                    await sessions["Yuki"].broadcast_to_room(
                        party.private_room, "chat_message", {"message": comment.message}
                    )
                    party.say(f"Yuki chatted: {comment.message!r}")
                if i == ticks // 2 + 1:
                    party.players[uid("Sora")].silent = True
                    party.players[uid("Sora")].status = "went silent"
                    party.say("Sora closed the laptop (no more heartbeats)")
                await step()

            # The stale member ---------------------------------------------------------------
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as owner:
                await owner.execute(
                    "update watchium_private.member_presence"
                    " set last_heartbeat = last_heartbeat"
                    "   - watchium_private.setting_interval('member_stale_after')"
                    "   - interval '5 seconds'"
                    " where room_id = %s and user_id = %s",
                    (party.private_room, uid("Sora")),
                )
            party.say("(demo) aged Sora's presence row past member_stale_after, as the owner")
            report = await client.service().maintain()
            details = await hana.get_room(party.private_room)
            sora_removed = all(m.user_id != uid("Sora") for m in details.members)
            if sora_removed:
                party.players.pop(uid("Sora"))
            removed = report.rooms.get("stale_members_removed")
            outcome = "removed" if sora_removed else "NOT removed"
            party.say(f"maintain(): Sora {outcome} ({removed} stale members in the database)")
            queue = await hana.get_queue(party.public_room)
            playing = next((i for i in queue.items if i.item_id == queue.current_item_id), None)
            auto_advanced = bool(
                report.queues
                and report.queues.get("queues_advanced")
                and playing is not None
                and playing.episode_number == 3
            )
            party.say(
                "maintain(): the public room's 2-second clip ended, the queue advanced by itself"
                f" to episode {playing.episode_number if playing else '?'}"
                if auto_advanced
                else "maintain(): the public room's queue did NOT advance"
            )
            await step()

            # A co-host pauses -------------------------------------------------------------
            await hana.set_member_role(party.private_room, uid("Mika"), "co_host")
            paused = await sessions["Mika"].change_playback_state(party.private_room, False)
            cohost_paused = (paused.raw.get("controlled_by"), paused.is_playing) == (
                uid("Mika"),
                False,
            )
            party.players[uid("Mika")].role = "co-host"
            party.say(f"Hana made Mika co-host; Mika paused at {paused.current_time:.0f} s")
            await _follow(party)
            await step()

            # A ready check, cancelled by the host -------------------------------------------
            check = await hana.start_ready_check(party.private_room, 30)
            asked_ready = check.waiting.get("ready_check") or {}
            party.say(
                f"Hana started a ready check (30 s): the room {check.waiting['state']}"
                f" ({check.waiting.get('reason')}), {asked_ready.get('ready_members')}"
                f" of {asked_ready.get('needed')} ready"
            )
            answered = await sessions["Yuki"].set_ready(party.private_room, True)
            now_ready = answered.waiting.get("ready_check") or {}
            party.say(
                f"Yuki is ready: {now_ready.get('ready_members')} of {now_ready.get('needed')}"
            )
            cancelled = await hana.cancel_ready_check(party.private_room)
            party.say(
                f"Hana cancelled the ready check: cancelled={cancelled.cancelled}, the room"
                f" {cancelled.waiting['state']} at {cancelled.current_time:.0f} s"
                f" (playing={cancelled.is_playing})"
            )
            ready_check = {
                "started": check.waiting["state"] == "waiting"
                and check.waiting.get("reason") == "ready_check",
                "answered": now_ready.get("ready_members", 0) > asked_ready.get("ready_members", 0),
                "cancelled": cancelled.cancelled is True,
                "stayed_paused": not cancelled.is_playing
                and cancelled.waiting["state"] == "paused",
            }
            await _follow(party)
            await step()

            # A ban with expiry (public room) ------------------------------------------------
            await hana.ban_member(
                party.public_room, uid("Ren"), duration_seconds=1, reason="spoilers"
            )
            try:
                await sessions["Ren"].join_room(party.public_room, username="Ren")
                ban_refused = False
            except Forbidden:
                ban_refused = True
            party.say(f"Hana banned Ren from the public room for 1 s: rejoin refused={ban_refused}")
            await asyncio.sleep(1.1)
            rejoined = await sessions["Ren"].join_room(party.public_room, username="Ren")
            party.say(f"the ban lapsed by itself: Ren {rejoined.status}")

            # Approval by the host (public room) -----------------------------------------------
            await hana.set_room_join_policy(party.public_room, "approval")
            asker = sessions["Mika"]
            try:
                await asker.join_room(party.public_room, username="Mika")
                approval_refused = False
            except Forbidden:
                approval_refused = True
            asked = await asker.request_to_join(
                party.public_room, username="Mika", message="Hana's friend from the other room"
            )
            requests = await hana.get_join_requests(party.public_room)
            await hana.answer_join_request(party.public_room, uid("Mika"), True)
            admitted = await asker.join_room(party.public_room, username="Mika")
            approval = {
                "join_refused": approval_refused,
                "requested": asked.status == "pending",
                "listed": [r.user_id for r in requests.requests] == [uid("Mika")],
                "joined": admitted.status == "joined",
            }
            party.say(
                "Hana made the public room join by approval: Mika's join refused, Mika asked,"
                f" Hana accepted, Mika {admitted.status}"
            )

            # The host leaves ----------------------------------------------------------------
            left = await hana.leave_room(party.private_room)
            party.players.pop(uid("Hana"))
            party.host = left.host_user_id or ""
            new_host = party.players.get(party.host)
            party.say(f"Hana left; the host is now {new_host.name if new_host else left}")
            await step()
            await step()
            live.update(party.render())
            await asyncio.sleep(0.6)  # let the listener drain the last events

        for each in (listener, chat):
            await each.close()
        for task in listen_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await task

        final = {
            p.name: {
                "user_id": p.user_id,
                "sync_level": p.last.sync_level if p.last else None,
                "is_synced": bool(p.last and p.last.is_synced),
                "time_difference": p.last.time_difference if p.last else None,
            }
            for p in party.players.values()
        }
        kinds = Counter(e.event for e in party.events)
        return {
            "run_id": run_id,
            "private_room": party.private_room,
            "public_room": party.public_room,
            "host_before": uid("Hana"),
            "host_after": left.host_user_id,
            "host_changed": left.host_user_id not in (None, uid("Hana")),
            "members": final,
            "everyone_in_sync": bool(final) and all(m["is_synced"] for m in final.values()),
            "wrong_episode_reports": party.wrong_episode_reports,
            "rtt_member": {
                "user_id": uid("Yuki"),
                "rtt_ms": getattr(party.players[uid("Yuki")].last, "rtt_ms", None),
            },
            "stale_member": uid("Sora"),
            "stale_member_removed": sora_removed,
            "stale_method": "aged the member's presence row past member_stale_after, as owner",
            "co_host": uid("Mika"),
            "co_host_paused": cohost_paused,
            "ban_refused_rejoin": ban_refused,
            "ban_lapsed_rejoined": rejoined.status == "joined",
            "join_approval": approval,
            "queue_auto_advanced": auto_advanced,
            "group_wait": group_wait,
            "ready_check": ready_check,
            "events_received": len(party.events),
            "event_types": dict(sorted(kinds.items())),
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        for c in conns:
            await c.close()
        await client.close()


def summary_lines(summary: dict[str, Any]) -> list[str]:
    host = "moved to " + str(summary["host_after"]) if summary["host_changed"] else "unchanged"
    levels = ", ".join(f"{n}: {m['sync_level']}" for n, m in summary["members"].items())
    return [
        f"host {host}",
        f"everyone ended in sync: {'yes' if summary['everyone_in_sync'] else 'NO'} ({levels})",
        "a buffering member made the room wait, its ready report resumed it at a scheduled start:"
        f" {'yes' if all(summary['group_wait'].values()) else 'NO'}",
        "the host started a ready check, a member answered, the host cancelled it (the room"
        f" stayed paused): {'yes' if all(summary['ready_check'].values()) else 'NO'}",
        f"stale member removed by maintenance: {'yes' if summary['stale_member_removed'] else 'NO'}"
        f" ({summary['stale_method']})",
        "public room's queue advanced by itself after a 2-second clip: "
        + ("yes" if summary.get("queue_auto_advanced") else "NO"),
        f"co-host paused: {'yes' if summary['co_host_paused'] else 'NO'}; ban refused the rejoin:"
        f" {'yes' if summary['ban_refused_rejoin'] else 'NO'}, and lapsed:"
        f" {'yes' if summary['ban_lapsed_rejoined'] else 'NO'}",
        "approval room: join refused, request accepted, then joined: "
        + ("yes" if all(summary.get("join_approval", {"": False}).values()) else "NO"),
        f"{summary['events_received']} events received by the listener: "
        + ", ".join(f"{k} {v}" for k, v in summary["event_types"].items()),
        f"done in {summary['seconds']} s (rooms {summary['private_room']},"
        f" {summary['public_room']})",
    ]
