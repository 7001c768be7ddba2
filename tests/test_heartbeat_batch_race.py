"""The batch updates each member's presence row at the address it read the row from (revision
0033), instead of looking the row up a second time. A member whose presence another transaction
updates while the batch waits for that row gets outcome 'throttled' and is not written (its next
heartbeat restates it, as after any heartbeat that comes too soon); the batch's other members
are written."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import psycopg

from tests.sync_factories import as_service
from watchium_db.testing import make_room

BATCH = (
    "select user_id, outcome from public.record_heartbeats("
    "%s, %s::text[], %s::numeric[], %s::boolean[])"
)


def presence(conn: psycopg.Connection[Any], room_id: str, user_id: str) -> Any:
    return conn.execute(
        "select reported_time, last_sample_at from watchium_private.member_presence"
        " where room_id = %s and user_id = %s",
        (room_id, user_id),
    ).fetchone()


def test_a_presence_row_updated_while_the_batch_waits_for_it_is_throttled(watchium_db_url, conn):
    room = make_room(conn, host="hana", members=["mio", "ren"])
    rid = room.room_id
    # Never heartbeated: neither member is throttled by the interval (last_sample_at is null).
    assert presence(conn, rid, "mio")[1] is None and presence(conn, rid, "ren")[1] is None
    result: dict[str, Any] = {}

    def relay() -> None:
        with as_service(conn) as c:
            result["rows"] = c.execute(
                BATCH, (rid, ["mio", "ren"], ["42", "43"], [True, True])
            ).fetchall()

    with (
        psycopg.connect(watchium_db_url) as holder,
        psycopg.connect(watchium_db_url, autocommit=True) as watcher,
    ):
        # Another transaction updates mio's presence (a new row version) and holds it.
        holder.execute(
            "update watchium_private.member_presence set reported_time = 7"
            " where room_id = %s and user_id = 'mio'",
            (rid,),
        )
        relayer = threading.Thread(target=relay)
        relayer.start()
        # The batch reads mio's row, then waits for the holder's row lock to update it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                " and query like '%record_heartbeats%'"
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the batch never waited for mio's presence row")
        holder.commit()
        relayer.join(timeout=30)
    assert dict(result["rows"]) == {"mio": "throttled", "ren": "ok"}
    # mio keeps the concurrent transaction's write; ren got the batch's.
    assert presence(conn, rid, "mio") == (Decimal("7.00"), None)
    assert presence(conn, rid, "ren")[0] == Decimal("43.00")
