"""The episode queue (revision 0013): order under concurrency, caps, the guarded advance,
automatic advances (maintenance, the next queue call), removal of the item playing, who may do
what, and what a client could try (a member reordering, a non-member reading a private room's
queue, a huge URL)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user, make_room

Conn = psycopg.Connection[Any]

ADD = (
    "select public.add_to_queue(%s, 'frieren', 'Frieren', %s, %s, %s::numeric)"
)


def rpc(conn: Conn, user: str | None, sql: str, *params: Any) -> Any:
    role = "anon" if user is None else "authenticated"
    with as_user(conn, user, role=role) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def sqlstate(conn: Conn, user: str | None, sql: str, *params: Any) -> str:
    try:
        rpc(conn, user, sql, *params)
    except psycopg.Error as exc:
        assert exc.sqlstate is not None
        return exc.sqlstate
    return "ok"


def add(conn: Conn, user: str, room_id: str, episode: int, duration: float = 1440) -> int:
    item = rpc(conn, user, ADD, room_id, episode, f"https://example.com/e{episode}.m3u8", duration)
    return int(item["item_id"])


def queue(conn: Conn, room_id: str) -> list[tuple[int, int, int]]:
    """(position, episode, item_id) in position order, read as the owner."""
    return [
        (p, e, i)
        for p, e, i in conn.execute(
            "select position, episode_number, item_id from public.room_queue where room_id = %s"
            " order by position",
            (room_id,),
        ).fetchall()
    ]


def room_row(conn: Conn, room_id: str) -> dict[str, Any]:
    cur = conn.execute(
        "select to_jsonb(r) from public.rooms as r where r.room_id = %s", (room_id,)
    ).fetchone()
    assert cur is not None
    return dict(cur[0])


def events(conn: Conn, room_id: str, *names: str) -> list[tuple[str, dict[str, Any]]]:
    return conn.execute(
        "select event, payload from watchium_private.room_events where room_id = %s"
        " and event = any(%s) order by event_id",
        (room_id, list(names)),
    ).fetchall()


def play_past_the_end(conn: Conn, room_id: str, seconds_past: float) -> None:
    """Move the playback reference back so that the room is `seconds_past` beyond the end of its
    current item's duration (as the owner: time passing, without waiting for it)."""
    conn.execute(
        "update public.rooms set is_playing = true, current_playback_time = 0,"
        " playback_updated_at = now() - make_interval(secs => (queue_advance_after - 2)::float8"
        " + %s) where room_id = %s",
        (seconds_past, room_id),
    )


# -------------------------------------------------------------------------------------------
# adding, order, caps
# -------------------------------------------------------------------------------------------
def test_members_add_items_in_order_and_anyone_who_sees_the_room_reads_them(conn):
    room = make_room(conn, host="hana", members=["mio"])
    a = add(conn, "mio", room.room_id, 2)
    b = add(conn, "hana", room.room_id, 3)
    assert queue(conn, room.room_id) == [(1, 2, a), (2, 3, b)]
    got = rpc(conn, "mio", "select public.get_queue(%s)", room.room_id)
    assert got["current_item_id"] is None
    assert [(i["position"], i["added_by"], i["added_by_username"]) for i in got["items"]] == [
        (1, "mio", "Mio"),
        (2, "hana", "Hana"),
    ]
    # A public room's queue is public, like its members.
    assert len(rpc(conn, "eve", "select public.get_queue(%s)", room.room_id)["items"]) == 2
    added = events(conn, room.room_id, "queue_item_added")
    assert [p["item_id"] for _, p in added] == [a, b]


def test_concurrent_adds_keep_a_dense_order(watchium_db_url, conn):
    """16 members add at once: every add gets its own place, 1..16 without gap, in the order the
    room lock granted them (which is item id order)."""
    users = [f"u{i:02d}" for i in range(16)]
    room = make_room(conn, host="hana", members=users)
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def worker(user: str) -> None:
        try:
            with psycopg.connect(watchium_db_url, autocommit=True) as c:
                barrier.wait()
                add(c, user, room.room_id, 2)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = queue(conn, room.room_id)
    assert [p for p, _, _ in rows] == list(range(1, 17))
    assert [i for _, _, i in rows] == sorted(i for _, _, i in rows)
    added_by = conn.execute(
        "select count(distinct added_by) from public.room_queue where room_id = %s", (room.room_id,)
    ).fetchone()
    assert added_by == (16,)


def test_per_user_and_per_room_caps(conn):
    conn.execute("update watchium_private.settings set value = '2' where key = 'max_queue_items_per_user'")
    conn.execute("update watchium_private.settings set value = '3' where key = 'max_queue_items_per_room'")
    room = make_room(conn, host="hana", members=["mio", "ren"])
    add(conn, "mio", room.room_id, 2)
    add(conn, "mio", room.room_id, 3)
    assert sqlstate(conn, "mio", ADD, room.room_id, 4, "https://example.com/4", 100) == "WD409"
    add(conn, "ren", room.room_id, 4)  # another user still may: the room holds 3
    assert sqlstate(conn, "hana", ADD, room.room_id, 5, "https://example.com/5", 100) == "WD409"
    assert len(queue(conn, room.room_id)) == 3
    # A place frees when the host removes an item.
    first = queue(conn, room.room_id)[0][2]
    rpc(conn, "hana", "select public.remove_queue_item(%s, %s)", room.room_id, first)
    add(conn, "mio", room.room_id, 6)
    assert [e for _, e, _ in queue(conn, room.room_id)] == [3, 4, 6]


def test_concurrent_adds_never_pass_the_per_user_cap(watchium_db_url, conn):
    conn.execute("update watchium_private.settings set value = '3' where key = 'max_queue_items_per_user'")
    room = make_room(conn, host="hana", members=["mio"])
    barrier = threading.Barrier(8)
    states: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        with psycopg.connect(watchium_db_url, autocommit=True) as c:
            barrier.wait()
            state = sqlstate(c, "mio", ADD, room.room_id, 2 + i, f"https://example.com/{i}", 100)
        with lock:
            states.append(state)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(states) == ["WD409"] * 5 + ["ok"] * 3
    assert [p for p, _, _ in queue(conn, room.room_id)] == [1, 2, 3]


# -------------------------------------------------------------------------------------------
# advancing
# -------------------------------------------------------------------------------------------
def test_advance_plays_the_next_item_and_resets_the_reference(conn):
    room = make_room(conn, host="hana", members=["mio"])
    rpc(conn, "hana", "select public.change_playback_state(%s, true, 600)", room.room_id)
    a = add(conn, "mio", room.room_id, 5, 1420.5)
    b = add(conn, "mio", room.room_id, 6)
    before = room_row(conn, room.room_id)
    result = rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    assert result["from_item_id"] is None and result["item"]["item_id"] == a
    assert result["reason"] == "advance" and result["advanced_by"] == "hana"
    after = room_row(conn, room.room_id)
    assert (after["episode_number"], after["video_url"], after["anime_id"]) == (
        5, "https://example.com/e5.m3u8", "frieren",
    )  # fmt: skip
    assert after["queue_item_id"] == a and float(after["queue_advance_after"]) == 1422.5
    assert float(after["current_playback_time"]) == 0 and after["is_playing"] is True
    # A new reference (the play before it was a scheduled start, 0.5 s ahead of its decision).
    assert after["playback_updated_at"] != before["playback_updated_at"]
    assert queue(conn, room.room_id) == [(0, 5, a), (1, 6, b)]
    # The episode's anchor exists; room comments now name the new episode.
    assert conn.execute(
        "select count(*) from public.comments where anime_id = 'frieren' and episode_number = 5"
        " and is_anchor"
    ).fetchone() == (1,)
    rpc(
        conn, "mio",
        "select public.post_comment('frieren', 5, 'next!', p_room_id => %s)", room.room_id,
    )  # fmt: skip
    playback = [p for _, p in events(conn, room.room_id, "playback")]
    assert playback[-1]["action"] == "episode" and playback[-1]["episode_number"] == 5
    assert playback[-1]["current_time"] == 0
    advanced = [p for _, p in events(conn, room.room_id, "queue_advanced")]
    assert advanced[-1]["item"]["item_id"] == a


def test_advance_is_guarded_by_the_current_item(conn):
    room = make_room(conn, host="hana")
    a = add(conn, "hana", room.room_id, 2)
    b = add(conn, "hana", room.room_id, 3)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    # A second click made from the same (old) state is refused: it would skip episode 2.
    assert sqlstate(conn, "hana", "select public.advance_queue(%s, null)", room.room_id) == "WD409"
    assert sqlstate(conn, "hana", "select public.advance_queue(%s, %s)", room.room_id, b) == "WD409"
    assert room_row(conn, room.room_id)["queue_item_id"] == a
    rpc(conn, "hana", "select public.advance_queue(%s, %s)", room.room_id, a)
    assert room_row(conn, room.room_id)["queue_item_id"] == b
    assert queue(conn, room.room_id) == [(0, 3, b)]


def test_concurrent_double_advance_moves_one_item(watchium_db_url, conn):
    """Two hosts' clicks at once (the same "next" from the same item): the second waits for the
    room lock, then finds the current item changed and is refused. One episode advanced."""
    room = make_room(conn, host="hana")
    a = add(conn, "hana", room.room_id, 2)
    b = add(conn, "hana", room.room_id, 3)
    add(conn, "hana", room.room_id, 4)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)

    outcome: dict[str, str] = {}
    with psycopg.connect(watchium_db_url) as first:
        with as_user(first, "hana") as c:
            c.execute("select public.advance_queue(%s, %s)", (room.room_id, a))

            def second() -> None:
                with psycopg.connect(watchium_db_url, autocommit=True) as c2:
                    outcome["second"] = sqlstate(
                        c2, "hana", "select public.advance_queue(%s, %s)", room.room_id, a
                    )

            thread = threading.Thread(target=second)
            thread.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                    " and query like '%%advance_queue%%'"
                ).fetchone()
                if waiting and waiting[0]:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the second advance never waited for the room lock")
        first.commit()
        thread.join()
    assert outcome == {"second": "WD409"}
    assert room_row(conn, room.room_id)["queue_item_id"] == b
    assert [e for _, e, _ in queue(conn, room.room_id)] == [3, 4]
    assert len(events(conn, room.room_id, "queue_advanced")) == 2


def test_the_queue_running_out_pauses_the_room_where_it_is(conn):
    room = make_room(conn, host="hana")
    a = add(conn, "hana", room.room_id, 2, 60)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    rpc(conn, "hana", "select public.seek_to_time(%s, 30)", room.room_id)
    result = rpc(conn, "hana", "select public.advance_queue(%s, %s)", room.room_id, a)
    assert result["item"] is None and result["playback"]["action"] == "pause"
    after = room_row(conn, room.room_id)
    assert after["queue_item_id"] is None and after["queue_advance_after"] is None
    assert after["is_playing"] is False and after["episode_number"] == 2
    assert queue(conn, room.room_id) == []
    assert sqlstate(conn, "hana", "select public.advance_queue(%s, null)", room.room_id) == "P0002"


# -------------------------------------------------------------------------------------------
# automatic advances
# -------------------------------------------------------------------------------------------
def test_maintenance_advances_a_finished_item(conn):
    room = make_room(conn, host="hana", members=["mio"])
    a = add(conn, "mio", room.room_id, 2, 1440)
    b = add(conn, "mio", room.room_id, 3, 1300)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    # Within the grace: nothing happens.
    play_past_the_end(conn, room.room_id, -1.0)  # 1 s into the 2 s grace
    report = conn.execute("select public.maintain()").fetchone()[0]
    assert report["queues"] == {"queues_advanced": 0, "queues_skipped_busy": 0}
    assert room_row(conn, room.room_id)["queue_item_id"] == a
    # Past it: advanced, by nobody.
    play_past_the_end(conn, room.room_id, 5.0)
    report = conn.execute("select public.maintain()").fetchone()[0]
    assert report["queues"] == {"queues_advanced": 1, "queues_skipped_busy": 0}
    after = room_row(conn, room.room_id)
    assert (after["queue_item_id"], after["episode_number"]) == (b, 3)
    assert float(after["current_playback_time"]) == 0 and after["is_playing"] is True
    advanced = [p for _, p in events(conn, room.room_id, "queue_advanced")]
    assert (advanced[-1]["reason"], advanced[-1]["advanced_by"], advanced[-1]["from_item_id"]) == (
        "auto", None, a,
    )  # fmt: skip
    assert conn.execute(
        "select count(*) from public.comments where anime_id = 'frieren' and episode_number = 3"
        " and is_anchor"
    ).fetchone() == (1,)


def test_maintenance_skips_a_room_a_caller_holds(watchium_db_url, conn):
    room = make_room(conn, host="hana")
    a = add(conn, "hana", room.room_id, 2, 100)
    add(conn, "hana", room.room_id, 3, 100)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    play_past_the_end(conn, room.room_id, 5.0)
    with psycopg.connect(watchium_db_url) as holder:
        holder.execute("select 1 from public.rooms where room_id = %s for update", (room.room_id,))
        report = conn.execute("select public.maintain()").fetchone()[0]
        holder.rollback()
    assert report["queues"] == {"queues_advanced": 0, "queues_skipped_busy": 1}
    assert room_row(conn, room.room_id)["queue_item_id"] == a


def test_the_next_queue_call_applies_a_due_advance_first(conn):
    room = make_room(conn, host="hana", members=["mio"])
    a = add(conn, "mio", room.room_id, 2, 100)
    b = add(conn, "mio", room.room_id, 3, 100)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    play_past_the_end(conn, room.room_id, 3.0)
    # The host's click on "next" from a, after a already ended: the automatic advance counts
    # as the click, so the click is refused instead of skipping b.
    assert sqlstate(conn, "hana", "select public.advance_queue(%s, %s)", room.room_id, a) == "WD409"
    assert room_row(conn, room.room_id)["queue_item_id"] == a  # refused: rolled back with it
    add(conn, "mio", room.room_id, 4, 100)
    assert room_row(conn, room.room_id)["queue_item_id"] == b
    assert [e for _, e, _ in queue(conn, room.room_id)] == [3, 4]


# -------------------------------------------------------------------------------------------
# moving and removing
# -------------------------------------------------------------------------------------------
def test_host_moves_items_and_positions_stay_dense(conn):
    room = make_room(conn, host="hana", members=["mio"])
    ids = [add(conn, "mio", room.room_id, e) for e in (2, 3, 4, 5)]
    rpc(conn, "hana", "select public.move_queue_item(%s, %s, 1)", room.room_id, ids[3])
    assert [e for _, e, _ in queue(conn, room.room_id)] == [5, 2, 3, 4]
    rpc(conn, "hana", "select public.move_queue_item(%s, %s, 4)", room.room_id, ids[0])
    assert queue(conn, room.room_id) == [(1, 5, ids[3]), (2, 3, ids[1]), (3, 4, ids[2]), (4, 2, ids[0])]
    assert sqlstate(conn, "hana", "select public.move_queue_item(%s, %s, 5)", room.room_id, ids[0]) == (
        "22023"
    )
    moved = [p for _, p in events(conn, room.room_id, "queue_item_moved")]
    assert [(p["from_position"], p["to_position"]) for p in moved] == [(4, 1), (2, 4)]
    # The item playing does not move.
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    assert sqlstate(conn, "hana", "select public.move_queue_item(%s, %s, 2)", room.room_id, ids[3]) == (
        "22023"
    )


def test_removing_the_current_item_advances_past_it(conn):
    room = make_room(conn, host="hana", members=["mio"])
    a = add(conn, "mio", room.room_id, 2)
    b = add(conn, "mio", room.room_id, 3)
    c = add(conn, "mio", room.room_id, 4)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    got = rpc(conn, "hana", "select public.remove_queue_item(%s, %s)", room.room_id, a)
    assert got["current_item_id"] == b
    assert [i["item_id"] for i in got["items"]] == [b, c]
    after = room_row(conn, room.room_id)
    assert (after["queue_item_id"], after["episode_number"]) == (b, 3)
    advanced = [p for _, p in events(conn, room.room_id, "queue_advanced")]
    assert advanced[-1]["reason"] == "removed" and advanced[-1]["advanced_by"] == "hana"
    # Removing a later item only closes the gap.
    rpc(conn, "hana", "select public.remove_queue_item(%s, %s)", room.room_id, c)
    assert queue(conn, room.room_id) == [(0, 3, b)]
    assert sqlstate(conn, "hana", "select public.remove_queue_item(%s, %s)", room.room_id, c) == "P0002"


# -------------------------------------------------------------------------------------------
# who may do what; attacks
# -------------------------------------------------------------------------------------------
def test_a_member_cannot_reorder_remove_or_advance(conn):
    room = make_room(conn, host="hana", members=["mio"])
    a = add(conn, "mio", room.room_id, 2)
    b = add(conn, "mio", room.room_id, 3)
    for sql, args in (
        ("select public.move_queue_item(%s, %s, 1)", (room.room_id, b)),
        ("select public.remove_queue_item(%s, %s)", (room.room_id, a)),
        ("select public.advance_queue(%s, null)", (room.room_id,)),
    ):
        assert sqlstate(conn, "mio", sql, *args) == "42501"
    # Nor by writing the table: clients have no write privilege (and RLS has no write policy).
    for sql in (
        "update public.room_queue set position = 3 - position",
        "delete from public.room_queue",
        "insert into public.room_queue (room_id, position, anime_id, anime_title, episode_number,"
        " video_url, duration, added_by_username) values ('" + room.room_id + "', 9, 'a', 'A', 1,"
        " 'https://x.y', 1, 'M')",
    ):
        assert sqlstate(conn, "mio", sql) == "42501"
    assert queue(conn, room.room_id) == [(1, 2, a), (2, 3, b)]
    # A signed-in non-member cannot add to a public room either.
    assert sqlstate(conn, "eve", ADD, room.room_id, 4, "https://example.com/4", 100) == "42501"


def test_a_private_rooms_queue_is_hidden_from_non_members(conn):
    room = make_room(conn, host="hana", members=["mio"], private=True)
    add(conn, "mio", room.room_id, 2)
    with as_user(conn, "eve") as c:
        assert c.execute("select count(*) from public.room_queue").fetchone() == (0,)
    with as_user(conn, None, role="anon") as c:
        assert c.execute("select count(*) from public.room_queue").fetchone() == (0,)
    with as_user(conn, "mio") as c:
        assert c.execute("select count(*) from public.room_queue").fetchone() == (1,)
    for sql in (
        "select public.get_queue(%s)",
        "select public.advance_queue(%s, null)",
        "select public.add_to_queue(%s, 'a', 'A', 1, 'https://example.com/v', 10)",
    ):
        with pytest.raises(psycopg.Error) as exc, as_user(conn, "eve") as c:
            c.execute(sql, (room.room_id,))
        assert exc.value.sqlstate == "P0002" and "not found" in str(exc.value)


@pytest.mark.parametrize(
    ("url", "state"),
    [
        ("https://example.com/" + "x" * 10_000, "22001"),  # over 8192 bytes: refused unread
        ("https://example.com/" + "x" * 2100, "22023"),  # over 2048 characters
        ("javascript:alert(1)", "22023"),
        ("https://example.com/a b", "22023"),
        ("https://example.com/\u202ecod.exe", "22023"),
        ("   ", "22023"),
        (None, "22023"),
    ],
)
def test_bad_video_urls_are_refused_and_nothing_is_stored(conn, url, state):
    room = make_room(conn, host="hana")
    assert sqlstate(conn, "hana", ADD, room.room_id, 2, url, 100) == state
    assert queue(conn, room.room_id) == []


@pytest.mark.parametrize("duration", [None, 0, -1, 86400.01, float("nan"), float("inf"), 1.001])
def test_bad_durations_are_refused(conn, duration):
    room = make_room(conn, host="hana")
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "hana") as c:
        c.execute(
            "select public.add_to_queue(%s, 'a', 'A', 2, 'https://example.com/v', %s::numeric)",
            (room.room_id, duration),
        )
    assert exc.value.sqlstate == "22023" and "p_duration" in str(exc.value)


def test_changing_the_episode_by_hand_leaves_the_current_item(conn):
    """update_room's episode change while a queue item plays: the room no longer plays the item,
    so the item goes and no automatic advance follows from its duration."""
    room = make_room(conn, host="hana")
    a = add(conn, "hana", room.room_id, 2, 100)
    b = add(conn, "hana", room.room_id, 3, 100)
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    rpc(conn, "hana", "select public.update_room(%s, p_episode_number => 9)", room.room_id)
    after = room_row(conn, room.room_id)
    assert (after["queue_item_id"], after["queue_advance_after"], after["episode_number"]) == (
        None, None, 9,
    )  # fmt: skip
    assert queue(conn, room.room_id) == [(1, 3, b)]
    removed = [p for _, p in events(conn, room.room_id, "queue_item_removed")]
    assert removed == [{"item_id": a, "position": 0, "removed_by": "hana"}]
    # A title change alone does not touch the queue.
    rpc(conn, "hana", "select public.advance_queue(%s, null)", room.room_id)
    rpc(conn, "hana", "select public.update_room(%s, p_title => 'Other')", room.room_id)
    assert room_row(conn, room.room_id)["queue_item_id"] == b


def test_the_room_permission_map_decides_who_edits_the_queue(conn):
    """Co-hosts move and advance (edit_queue defaults to co_host), viewers cannot add, and a
    room's override of add_to_queue applies."""
    room = make_room(conn, host="hana", members=["mio", "ren", "kai"])
    conn.execute(
        "update public.room_members set role = case user_id when 'mio' then 'co_host'"
        " when 'kai' then 'viewer' else role end where room_id = %s",
        (room.room_id,),
    )
    a = add(conn, "ren", room.room_id, 2)
    b = add(conn, "ren", room.room_id, 3)
    rpc(conn, "mio", "select public.move_queue_item(%s, %s, 1)", room.room_id, b)
    assert rpc(conn, "mio", "select public.advance_queue(%s, null)", room.room_id)["item"][
        "item_id"
    ] == b
    rpc(conn, "mio", "select public.remove_queue_item(%s, %s)", room.room_id, a)
    assert sqlstate(conn, "kai", ADD, room.room_id, 4, "https://example.com/4", 100) == "42501"
    conn.execute(
        "insert into public.room_permissions (room_id, permission, min_role)"
        " values (%s, 'add_to_queue', 'co_host')",
        (room.room_id,),
    )
    assert sqlstate(conn, "ren", ADD, room.room_id, 4, "https://example.com/4", 100) == "42501"
    add(conn, "mio", room.room_id, 4)


def test_forget_user_leaves_queued_items_without_their_author(conn):
    room = make_room(conn, host="hana", members=["mio"])
    a = add(conn, "mio", room.room_id, 2)
    b = add(conn, "hana", room.room_id, 3)
    with as_user(conn, None, role="service_role") as c:
        row = c.execute("select public.forget_user('mio')").fetchone()
    assert row is not None and row[0]["queue_items_anonymized"] == 1
    assert conn.execute(
        "select item_id, added_by, added_by_username from public.room_queue where room_id = %s"
        " order by position",
        (room.room_id,),
    ).fetchall() == [(a, None, "deleted"), (b, "hana", "Hana")]
