"""Shared machinery of the reliability suite (tests/test_reliability_*.py).

A randomized watch-party workload run through the real RPC functions by several threads, each
with its own connection (application_name ``wd-rel-*`` so a killer thread can find it), acting
as different users per transaction exactly as PostgREST does (watchium_db.testing.as_user).

Every successful membership change is written to a ledger, so afterwards the room_members table
can be compared with what the callers were told. Every error is counted by SQLSTATE; anything
outside the API's SQLSTATEs (plus the retriable ones a caller may legitimately see) fails the
test, as does any invariant violation seen by the checker.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from watchium_db.testing import as_user

Conn = psycopg.Connection[Any]

APP_PREFIX = "wd-rel-"
ANIME_ID = "a1"
EPISODE = 1

# The API's SQLSTATEs (docs/architecture.md) ...
API_ERRORS = {"22023", "28000", "42501", "P0002", "WD409", "WD429"}
# ... plus the retriable ones: serialization failure, lock timeout.
RETRIABLE = {"40001", "55P03"}
# A killed backend: admin shutdown; a connection lost mid-call has no SQLSTATE at all.
KILLED = {"57P01", "08006", "08003", "connection"}

CREATE = (
    "select public.create_room(p_title => 'Party', p_anime_id => %s, p_anime_title => 'Anime',"
    " p_episode_number => %s, p_video_url => 'https://example.com/v', p_username => %s,"
    " p_is_public => %s)"
)

# Rooms breaking the host invariants (one statement: one snapshot).
HOST_VIOLATIONS = """
select 'host', r.room_id, s.hosts, s.members, r.host_user_id, s.host_user_id
from public.rooms as r
cross join lateral (
  select count(*) filter (where m.is_host) as hosts,
         count(*) as members,
         max(m.user_id) filter (where m.is_host) as host_user_id,
         max(m.username) filter (where m.is_host) as host_username
  from public.room_members as m
  where m.room_id = r.room_id
) as s
where (s.members > 0 and (s.hosts <> 1
                          or r.host_user_id is distinct from s.host_user_id
                          or r.host_username is distinct from s.host_username))
   or (s.members = 0 and r.host_user_id is not null)
"""

# Everything a half-written transaction or a bad value would leave behind, in one snapshot.
# Each branch returns (kind, detail...) rows; an empty result means every invariant holds.
STATE_VIOLATIONS = (
    HOST_VIOLATIONS
    + """
union all
-- a member without its presence row, or presence without its member (one trigger, one txn)
select 'member_without_presence', m.room_id, null, null, m.user_id, null
from public.room_members as m
where not exists (select from watchium_private.member_presence as p
                  where p.room_id = m.room_id and p.user_id = m.user_id)
union all
select 'presence_without_member', p.room_id, null, null, p.user_id, null
from watchium_private.member_presence as p
where not exists (select from public.room_members as m
                  where m.room_id = p.room_id and m.user_id = p.user_id)
union all
-- a private room has exactly its secret; a public room none
select 'secret_mismatch', r.room_id, null, null, r.is_public::text, null
from public.rooms as r
where r.is_public = exists (select from watchium_private.room_secrets as s
                            where s.room_id = r.room_id)
union all
-- values: never NaN, never out of range
select 'room_value', r.room_id, null, null,
       r.current_playback_time::text, r.playback_speed::text
from public.rooms as r
where r.current_playback_time = 'NaN' or r.current_playback_time not between 0 and 86400
   or r.playback_speed = 'NaN' or r.playback_speed not between 0.25 and 4
union all
select 'member_value', m.room_id, null, null, m.user_id, m.current_playback_time::text
from public.room_members as m
where m.current_playback_time = 'NaN' or m.current_playback_time not between 0 and 86400
union all
select 'presence_value', p.room_id, null, null, p.user_id,
       p.reported_time::text || '/' || coalesce(p.time_difference::text, 'null')
from watchium_private.member_presence as p
where p.reported_time = 'NaN' or p.reported_time not between 0 and 86400
   or p.time_difference = 'NaN' or p.time_difference not between 0 and 86400
union all
select 'sync_value', s.room_id, null, null, s.user_id,
       s.host_time::text || '/' || s.member_time::text || '/' || s.time_difference::text
from public.sync_records as s
where s.host_time = 'NaN' or s.host_time not between 0 and 86400
   or s.member_time = 'NaN' or s.member_time not between 0 and 86400
   or s.time_difference = 'NaN' or s.time_difference not between 0 and 86400
union all
-- sync records of a host control without the control's playback event (same transaction)
select 'control_sync_without_event', s.room_id, count(*), null, s.sync_event_type,
       s.created_at::text
from public.sync_states as s
where s.sync_event_type in ('seek', 'play_pause', 'speed')
  and not exists (select from watchium_private.room_events as e
                  where e.room_id = s.room_id and e.event = 'playback'
                    and e.created_at = s.created_at)
group by s.room_id, s.sync_event_type, s.created_at
"""
)

# Operations of room governance (revisions 0009-0019), added to the default mix by the
# concurrency test: role changes, co-host controls, bans with a short expiry, kicks with a ban,
# and queue edits (members add short items; the host moves, removes and advances them).
GOVERNANCE_OPERATIONS = (
    "role", "role", "cohost_seek", "ban", "kick_ban",
    "queue_add", "queue_add", "queue_move", "queue_remove", "queue_advance",
)  # fmt: skip

# Each room's queue: positions dense from 0 (the item playing, exactly rooms.queue_item_id)
# or from 1 (nothing from the queue playing), never a gap or a duplicate.
QUEUE_VIOLATIONS = """
select 'queue_positions', q.room_id, count(*), null, null,
       string_agg(q.position::text, ',' order by q.position)
from public.room_queue as q
join public.rooms as r on r.room_id = q.room_id
group by q.room_id, r.queue_item_id
having max(q.position) - min(q.position) + 1 <> count(*)
    or count(distinct q.position) <> count(*)
    or min(q.position) <> case when r.queue_item_id is null then 1 else 0 end
union all
select 'queue_current', r.room_id, null, null, null, r.queue_item_id::text
from public.rooms as r
where r.queue_item_id is not null
  and not exists (select from public.room_queue as q
                  where q.room_id = r.room_id and q.item_id = r.queue_item_id and q.position = 0)
"""

# A member with a ban in force: a ban removes the member in the same transaction, and
# join_room refuses a user whose ban ends after the join's now(), so no snapshot may show one.
# "In force" is judged at clock_timestamp(), read while the statement runs, after its snapshot
# was taken: a join visible in the snapshot judged the ban before that. statement_timestamp()
# is earlier than the snapshot by the planning of this union (milliseconds), long enough for a
# short ban to end and a join to commit in between; now() is earlier still.
BANNED_MEMBERS = """
select 'banned_member', m.room_id, null, null, m.user_id, b.ends_at::text
from public.room_members as m
join watchium_private.room_bans as b on b.room_id = m.room_id and b.user_id = m.user_id
where b.ends_at is null or b.ends_at > clock_timestamp()
"""

EXPECTED_POSITION = (
    "select watchium_private.room_expected_position(r) from public.rooms as r where r.room_id = %s"
)


def sqlstate_of(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate:
            return exc.sqlstate
        return "connection"
    return type(exc).__name__


def connect(url: str, name: str) -> Conn:
    return psycopg.connect(url, autocommit=True, application_name=APP_PREFIX + name)


def rpc(
    conn: Conn, user: str | None, sql: str, params: Any = (), role: str = "authenticated"
) -> Any:
    with as_user(conn, user, role=role) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def check_state(conn: Conn, sql: str = STATE_VIOLATIONS) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


def relax_limits(conn: Conn, *, stale_after: str = "4 seconds") -> None:
    """Rate limits out of the way (heartbeat throttling stays), members stale quickly."""
    conn.execute("update watchium_private.rate_limit_rules set max_requests = 1000000")
    conn.execute(
        "update watchium_private.settings set value = to_jsonb(%s::text)"
        " where key = 'member_stale_after'",
        (stale_after,),
    )


@dataclass
class Ledger:
    """What the callers were told: successful joins and removals per (room, user)."""

    joined: Counter[tuple[str, str]] = field(default_factory=Counter)
    removed: Counter[tuple[str, str]] = field(default_factory=Counter)
    uncertain: set[tuple[str, str]] = field(default_factory=set)  # call killed mid-flight
    ops: Counter[str] = field(default_factory=Counter)  # successful operations by kind
    errors: Counter[str] = field(default_factory=Counter)  # failed calls by SQLSTATE
    examples: dict[str, str] = field(default_factory=dict)  # first message per SQLSTATE
    failures: list[str] = field(default_factory=list)
    kills: int = 0
    checks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> str:
        return (
            f"ops={sum(self.ops.values())} {dict(self.ops)} errors={dict(self.errors)}"
            f" kills={self.kills} checks={self.checks} uncertain={len(self.uncertain)}"
            f" examples={self.examples}"
        )


def make_rooms(conn: Conn, count: int, ledger: Ledger, private_every: int = 4) -> list[str]:
    rooms = []
    for i in range(count):
        owner = f"owner{i:02d}"
        is_public = i % private_every != 0
        room_id: str = rpc(conn, owner, CREATE, (ANIME_ID, EPISODE, owner.capitalize(), is_public))[
            "room"
        ]["room_id"]
        ledger.joined[(room_id, owner)] += 1
        rooms.append(room_id)
    return rooms


def verify_membership(conn: Conn, ledger: Ledger) -> None:
    """A member is present iff its successful joins outnumber its removals (leave, kick, and
    stale clean-ups by maintenance, which it logs as member_left events with reason 'stale')."""
    removed = Counter(ledger.removed)
    for room_id, user in conn.execute(
        "select room_id, payload->>'user_id' from watchium_private.room_events"
        " where event = 'member_left' and payload->>'reason' = 'stale'"
    ).fetchall():
        removed[(room_id, user)] += 1
    present = set(conn.execute("select room_id, user_id from public.room_members").fetchall())
    deleted_rooms = {
        r[0]
        for r in conn.execute(
            "select distinct room_id from watchium_private.room_events where event = 'room_deleted'"
        ).fetchall()
    }
    for pair in set(ledger.joined) | set(removed) | present:
        if pair in ledger.uncertain or pair[0] in deleted_rooms:
            continue
        net = ledger.joined[pair] - removed[pair]
        assert net in (0, 1), (pair, ledger.joined[pair], removed[pair], ledger.summary())
        assert (pair in present) == (net == 1), (
            pair,
            ledger.joined[pair],
            removed[pair],
            ledger.summary(),
        )


class Workload:
    """Random RPC traffic over ``rooms`` from ``workers`` threads, plus optional maintenance
    and killer threads. ``run()`` returns when every worker has done ``ops_per_worker``
    operations (or ``seconds`` passed)."""

    def __init__(
        self,
        url: str,
        rooms: list[str],
        ledger: Ledger,
        *,
        workers: int = 8,
        ops_per_worker: int = 100,
        users: int = 24,
        check_every: int = 5,
        maintenance: bool = True,
        kill_interval: float | None = None,
        kill_names: str = "%",
        operations: tuple[str, ...] | None = None,
        allowed: set[str] | None = None,
        seed: int = 0,
        maintain_pause: float = 0.2,
        check_sql: str = STATE_VIOLATIONS,
    ) -> None:
        self.check_sql = check_sql
        self.maintain_pause = maintain_pause
        self.url = url
        self.rooms = rooms
        self.ledger = ledger
        self.workers = workers
        self.ops_per_worker = ops_per_worker
        self.users = [f"u{i:02d}" for i in range(users)]
        self.check_every = check_every
        self.maintenance = maintenance
        self.kill_interval = kill_interval
        self.kill_names = APP_PREFIX + kill_names  # LIKE pattern: 'maint' kills maintenance only
        self.kills_by_name: Counter[str] = Counter()
        self.operations = operations or (
            "join",
            "join",
            "join",
            "leave",
            "kick",
            "transfer",
            "play_pause",
            "seek",
            "speed",
            "heartbeat",
            "heartbeat",
            "heartbeat",
            "comment",
            "broadcast",
            "sync_state",
            "privacy",
        )
        self.allowed = set(API_ERRORS | RETRIABLE) if allowed is None else allowed
        if kill_interval is not None:
            self.allowed |= KILLED
        self.seed = seed
        self.stop = threading.Event()
        self.done = 0
        self.maintain_runs = 0

    # -- bookkeeping --------------------------------------------------------------------
    def fail(self, message: str) -> None:
        with self.ledger.lock:
            self.ledger.failures.append(message)
        self.stop.set()

    def error(self, where: str, exc: BaseException) -> str:
        state = sqlstate_of(exc)
        with self.ledger.lock:
            self.ledger.errors[state] += 1
            self.ledger.examples.setdefault(state, f"{where}: {str(exc).splitlines()[0][:160]}")
        if state not in self.allowed:
            self.fail(f"{where}: {state} {exc}")
        return state

    # -- one operation --------------------------------------------------------------------
    def members(self, c: Conn, room_id: str) -> list[tuple[str, bool]]:
        return [
            (r[0], r[1])
            for r in c.execute(
                "select user_id, is_host from public.room_members where room_id = %s", (room_id,)
            ).fetchall()
        ]

    def governance(
        self,
        c: Conn,
        rng: random.Random,
        op: str,
        room_id: str,
        host: str | None,
        members: list[tuple[str, bool]],
        pending: list[tuple[str, str]],
    ) -> str:
        """Role changes, co-host controls, bans (1 to 3 s) and kicks with a ban."""
        others = [u for u, is_host in members if not is_host]
        if host is None or not others:
            return "skip"
        target = rng.choice(others)
        if op == "role":
            role = rng.choice(["co_host", "member", "viewer"])
            rpc(c, host, "select public.set_member_role(%s, %s, %s)", (room_id, target, role))
            return op
        if op == "cohost_seek":
            row = c.execute(
                "select user_id from public.room_members where room_id = %s and role = 'co_host'"
                " order by random() limit 1",
                (room_id,),
            ).fetchone()
            if row is None:
                return "skip"
            rpc(c, row[0], "select public.seek_to_time(%s, %s::numeric)",
                (room_id, round(rng.uniform(0, 86400), 2)))  # fmt: skip
            return op
        if op.startswith("queue_"):
            return self.queue_edit(c, rng, op, room_id, host, target)
        pair = (room_id, target)
        self.pending(pending, pair)
        if op == "ban":
            result = rpc(c, host, "select public.ban_member(%s, %s, %s)",
                         (room_id, target, rng.randint(1, 3)))  # fmt: skip
            removed = bool(result["removed"])
        else:
            rpc(
                c,
                host,
                "select public.kick_member(%s, %s, %s)",
                (room_id, target, rng.randint(1, 3)),
            )
            removed = True
        pending.clear()
        if removed:
            with self.ledger.lock:
                self.ledger.removed[pair] += 1
        return op

    def queue_edit(
        self, c: Conn, rng: random.Random, op: str, room_id: str, host: str, member: str
    ) -> str:
        """A member adds a short item; the host moves or removes a random one, or advances from
        the item playing (the guarded advance: WD409 when another advance came first)."""
        if op == "queue_add":
            rpc(c, member, "select public.add_to_queue(%s, 'rel', 'Reliability', %s,"
                " 'https://example.com/r.m3u8', %s::numeric)",
                (room_id, rng.randint(1, 500), rng.choice([1, 5, 60])))  # fmt: skip
            return op
        row = c.execute(
            "select (select item_id from public.room_queue where room_id = %s"
            " order by random() limit 1), (select queue_item_id from public.rooms"
            " where room_id = %s), (select count(*) from public.room_queue where room_id = %s)",
            (room_id, room_id, room_id),
        ).fetchone()
        assert row is not None
        item, current, count = row
        if op == "queue_advance":
            rpc(c, host, "select public.advance_queue(%s, %s)", (room_id, current))
            return op
        if item is None:
            return "skip"
        if op == "queue_move":
            rpc(c, host, "select public.move_queue_item(%s, %s, %s)",
                (room_id, item, rng.randint(1, max(1, count))))  # fmt: skip
        else:
            rpc(c, host, "select public.remove_queue_item(%s, %s)", (room_id, item))
        return op

    def pending(self, pending: list[tuple[str, str]], pair: tuple[str, str]) -> None:
        """Marks a membership change in flight: if the call is killed, nobody knows whether
        it committed, and the ledger leaves that (room, user) out of the exact comparison."""
        pending.append(pair)

    def step(self, c: Conn, rng: random.Random, pending: list[tuple[str, str]]) -> str:
        """Runs one random operation and returns its kind ('skip' when it had nothing to do)."""
        room_id = rng.choice(self.rooms)
        op = rng.choice(self.operations)
        members = self.members(c, room_id)
        host = next((u for u, h in members if h), None)
        member = rng.choice(members)[0] if members else None
        led = self.ledger
        if op == "join":
            user = rng.choice(self.users)
            key_row = c.execute(
                "select access_key from watchium_private.room_secrets where room_id = %s",
                (room_id,),
            ).fetchone()
            pair = (room_id, user)
            self.pending(pending, pair)
            result = rpc(
                c,
                user,
                "select public.join_room(%s, %s, %s)",
                (room_id, key_row[0] if key_row else None, user.capitalize()),
            )
            pending.clear()
            with led.lock:
                if result["status"] == "joined":
                    led.joined[pair] += 1
            return op
        if op in ("leave", "kick", "transfer"):
            target = member if members and rng.random() < 0.8 else rng.choice(self.users)
            if target is None:
                return "skip"
            pair = (room_id, target)
            if op == "leave":
                self.pending(pending, pair)
                result = rpc(c, target, "select public.leave_room(%s)", (room_id,))
                pending.clear()
                with led.lock:
                    if result["status"] == "left":
                        led.removed[pair] += 1
                return op
            if host is None or host == target:
                return "skip"
            if op == "transfer":
                rpc(c, host, "select public.transfer_host(%s, %s)", (room_id, target))
                return op
            self.pending(pending, pair)
            rpc(c, host, "select public.kick_member(%s, %s)", (room_id, target))
            pending.clear()
            with led.lock:
                led.removed[pair] += 1
            return op
        if op in ("play_pause", "seek", "speed"):
            if host is None:
                return "skip"
            if op == "play_pause":
                rpc(
                    c,
                    host,
                    "select public.change_playback_state(%s, %s, %s::numeric)",
                    (
                        room_id,
                        rng.random() < 0.6,
                        rng.choice([None, round(rng.uniform(0, 3000), 2)]),
                    ),
                )
            elif op == "seek":
                rpc(
                    c,
                    host,
                    "select public.seek_to_time(%s, %s::numeric)",
                    (room_id, round(rng.uniform(0, 86400), 2)),
                )
            else:
                rpc(
                    c,
                    host,
                    "select public.set_playback_speed(%s, %s::numeric)",
                    (room_id, rng.choice([0.25, 0.5, 1, 1.25, 1.5, 2, 4])),
                )
            return op
        if op == "heartbeat":
            if member is None:
                return "skip"
            row = c.execute(EXPECTED_POSITION, (room_id,)).fetchone()
            expected = float(row[0]) if row and row[0] is not None else 0.0
            position = min(86400.0, max(0.0, expected + rng.uniform(-3, 3)))
            result = rpc(
                c,
                member,
                "select public.record_heartbeat(%s, %s::numeric, %s)",
                (room_id, round(position, 2), rng.random() < 0.7),
            )
            for key in ("current_time", "expected_time", "time_difference"):
                value = result.get(key)
                if value is not None and not (0 <= float(value) <= 86400):
                    self.fail(f"heartbeat returned {key}={value!r}: {result}")
            return op
        if op == "comment":
            author = member or rng.choice(self.users)
            rpc(
                c,
                author,
                "select public.post_comment(%s, %s, %s, %s, null, %s, null, %s::numeric)",
                (
                    ANIME_ID,
                    EPISODE,
                    f"msg {rng.random():.6f}",
                    author.capitalize(),
                    room_id if member else None,
                    round(rng.uniform(0, 1400), 2),
                ),
            )
            return op
        if op == "broadcast":
            if member is None:
                return "skip"
            if host is not None and rng.random() < 0.3:
                rpc(
                    c,
                    host,
                    "select public.broadcast_to_room(%s, 'seek', %s::jsonb)",
                    (room_id, json.dumps({"current_time": round(rng.uniform(0, 1400), 2)})),
                )
            else:
                rpc(
                    c,
                    member,
                    "select public.broadcast_to_room(%s, 'chat_message', %s::jsonb)",
                    (room_id, json.dumps({"message": "hi"})),
                )
            return op
        if op == "sync_state":
            if member is None:
                return "skip"
            state = rpc(c, member, "select public.get_room_sync_state(%s)", (room_id,))
            text = json.dumps(state)
            if "NaN" in text or "Infinity" in text:
                self.fail(f"get_room_sync_state returned a non-finite number: {text[:500]}")
            return op
        if op in GOVERNANCE_OPERATIONS:
            return self.governance(c, rng, op, room_id, host, members, pending)
        if op == "privacy":
            if host is None:
                return "skip"
            is_public = c.execute(
                "select is_public from public.rooms where room_id = %s", (room_id,)
            ).fetchone()
            if is_public is None:
                return "skip"
            rpc(
                c,
                host,
                "select public.update_room(%s, p_is_public => %s)",
                (room_id, not is_public[0]),
            )
            return op
        raise AssertionError(op)

    # -- threads --------------------------------------------------------------------------
    def worker(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        c: Conn | None = None
        count = 0
        while count < self.ops_per_worker and not self.stop.is_set():
            try:
                if c is None or c.closed or c.broken:
                    c = connect(self.url, f"w{index}")
                pending: list[tuple[str, str]] = []
                op = self.step(c, rng, pending)
                with self.ledger.lock:
                    self.ledger.ops[op] += 1
            except psycopg.Error as exc:
                state = self.error(f"worker {index} op {count}", exc)
                if state in KILLED:  # it may or may not have committed
                    with self.ledger.lock:
                        self.ledger.uncertain.update(pending)
                if c is not None and (c.closed or c.broken):
                    c = None
            except Exception as exc:  # a bug in the test or a broken result: report it
                self.fail(f"worker {index} op {count}: {type(exc).__name__} {exc}")
            count += 1
            if count % self.check_every == 0 and c is not None and not c.broken:
                try:
                    bad = check_state(c, self.check_sql)
                    with self.ledger.lock:
                        self.ledger.checks += 1
                    if bad:
                        self.fail(f"worker {index} after op {count}: {bad[:5]}")
                except psycopg.Error as exc:
                    self.error(f"worker {index} check", exc)
                    if c.closed or c.broken:
                        c = None
        with self.ledger.lock:
            self.done += 1
        if c is not None:
            c.close()

    def maintainer(self) -> None:
        c: Conn | None = None
        while not self.stop.is_set():
            try:
                if c is None or c.closed or c.broken:
                    c = connect(self.url, "maint")
                rpc(c, None, "select public.maintain()", role="service_role")
                self.maintain_runs += 1
            except psycopg.Error as exc:
                self.error("maintain", exc)
                if c is not None and (c.closed or c.broken):
                    c = None
            time.sleep(self.maintain_pause)
        if c is not None:
            c.close()

    def killer(self) -> None:
        assert self.kill_interval is not None
        rng = random.Random(self.seed + 7)
        with psycopg.connect(self.url, autocommit=True) as c:
            while not self.stop.wait(rng.uniform(0.3, 1.7) * self.kill_interval):
                # Only backends inside a statement: the kill lands mid-RPC / mid-maintenance.
                rows = c.execute(
                    "select pid, application_name from pg_stat_activity"
                    " where application_name like %s"
                    " and datname = current_database() and state = 'active'",
                    (self.kill_names,),
                ).fetchall()
                if not rows:
                    continue
                pid, name = rng.choice(rows)
                killed = c.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()
                if killed and killed[0]:
                    with self.ledger.lock:
                        self.ledger.kills += 1
                        self.kills_by_name[name.removeprefix(APP_PREFIX)] += 1

    def run(self, timeout: float = 120) -> float:
        began = time.monotonic()
        threads = [threading.Thread(target=self.worker, args=(i,)) for i in range(self.workers)]
        extra = []
        if self.maintenance:
            extra.append(threading.Thread(target=self.maintainer))
        if self.kill_interval is not None:
            extra.append(threading.Thread(target=self.killer))
        for t in threads + extra:
            t.start()
        for t in threads:
            t.join(max(0.1, timeout - (time.monotonic() - began)))
        self.stop.set()
        for t in threads + extra:
            t.join(30)
        alive = [t for t in threads + extra if t.is_alive()]
        assert not alive, f"threads still running after {timeout} s: {alive}"
        return time.monotonic() - began
