"""Room sync options (revision 0011): drift thresholds, wait timeouts, start lead and episode
countdown per room, with project-wide defaults in the settings; the host sets them, members read
them, bad input is refused by name and nothing invalid is stored."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from watchium_db.testing import as_user, make_room

DEFAULTS = {
    "drift_perfect": 0.5,
    "drift_good": 1,
    "drift_minor": 2,
    "first_load_timeout": 60,
    "rebuffer_timeout": 10,
    "min_start_lead": 0.5,
    "episode_countdown": 0,
}


def call(conn: psycopg.Connection[Any], user: str | None, sql: str, *params: Any) -> Any:
    with as_user(conn, user, role="authenticated" if user else "anon") as c:
        row = c.execute(sql, params).fetchone()
    return row[0] if row else None


def set_options(conn: psycopg.Connection[Any], user: str, room_id: str, options: Any) -> Any:
    return call(conn, user, "select public.set_room_sync_options(%s, %s)", room_id,
                json.dumps(options))  # fmt: skip


def stored(conn: psycopg.Connection[Any], room_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "select sync_drift_perfect, sync_drift_good, sync_drift_minor, sync_first_load_timeout,"
        " sync_rebuffer_timeout, sync_min_start_lead, sync_episode_countdown"
        " from public.rooms where room_id = %s",
        (room_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_defaults_come_from_the_settings_and_members_read_them(conn):
    room = make_room(conn, host="hana", members=["mio"])
    got = call(conn, "mio", "select public.get_room_sync_options(%s)", room.room_id)
    assert {k: float(v) for k, v in got.items() if k != "defaults"} == DEFAULTS
    assert sorted(got["defaults"]) == sorted(DEFAULTS)
    # A project-wide change reaches every room that did not choose its own value.
    conn.execute("update watchium_private.settings set value = '15' where key = 'sync_rebuffer_timeout'")
    got = call(conn, "hana", "select public.get_room_sync_options(%s)", room.room_id)
    assert got["rebuffer_timeout"] == 15


def test_the_host_sets_options_and_the_room_is_told(conn):
    room = make_room(conn, host="hana", members=["mio"])
    got = set_options(conn, "hana", room.room_id, {"drift_minor": 3, "episode_countdown": 3,
                                                    "first_load_timeout": 30})  # fmt: skip
    assert (got["drift_perfect"], got["drift_good"], got["drift_minor"]) == (0.5, 1, 3)
    assert (got["episode_countdown"], got["first_load_timeout"]) == (3, 30)
    assert sorted(got["defaults"]) == ["min_start_lead", "rebuffer_timeout"]
    # The drift thresholds are stored as one set.
    assert stored(conn, room.room_id) == (
        Decimal("0.50"), Decimal("1.00"), Decimal("3.00"), Decimal("30.00"), None, None,
        Decimal("3.00"),
    )  # fmt: skip
    events = conn.execute(
        "select payload from watchium_private.room_events where room_id = %s and event = 'room_updated'",
        (room.room_id,),
    ).fetchall()
    assert [e[0] for e in events] == [
        {"sync_options": {"drift_minor": 3, "episode_countdown": 3, "first_load_timeout": 30}}
    ]
    # Setting the same values again changes nothing and says nothing.
    set_options(conn, "hana", room.room_id, {"episode_countdown": 3})
    # null: back to the project default; for one drift threshold, the whole set.
    got = set_options(conn, "hana", room.room_id, {"drift_good": None, "episode_countdown": None})
    assert got["drift_minor"] == 2 and got["episode_countdown"] == 0
    assert stored(conn, room.room_id)[:3] == (None, None, None)
    assert stored(conn, room.room_id)[6] is None
    count = conn.execute(
        "select count(*) from watchium_private.room_events where room_id = %s and event = 'room_updated'",
        (room.room_id,),
    ).fetchone()
    assert count == (2,)


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"drift_minor": "NaN"}, "p_options.drift_minor"),
        ({"drift_minor": "Infinity"}, "p_options.drift_minor"),
        ({"drift_minor": 0}, "p_options.drift_minor"),
        ({"drift_perfect": 1.5}, "p_options.drift_perfect"),  # above drift_good (1)
        ({"drift_good": 5}, "p_options.drift_good"),  # above drift_minor (2)
        ({"first_load_timeout": -1}, "p_options.first_load_timeout"),
        ({"rebuffer_timeout": 601}, "p_options.rebuffer_timeout"),
        ({"min_start_lead": 1e9}, "p_options.min_start_lead"),
        ({"episode_countdown": True}, "p_options.episode_countdown"),
        ({"bogus": 1}, "p_options.bogus"),
        ({"drift_perfect": None, "drift_good": 0.8}, "p_options"),
        ({}, "p_options"),
        ([1], "p_options"),
    ],
)
def test_bad_options_are_refused_by_name_and_nothing_is_stored(conn, options, names):
    room = make_room(conn, host="hana")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        set_options(conn, "hana", room.room_id, options)
    assert names in str(exc.value)
    assert stored(conn, room.room_id) == (None,) * 7


def test_only_the_host_sets_and_only_members_read(conn):
    room = make_room(conn, host="hana", members=["mio"], private=True)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        set_options(conn, "mio", room.room_id, {"episode_countdown": 3})
    # A private room answers a stranger as a missing room does.
    with pytest.raises(psycopg.errors.NoDataFound):
        set_options(conn, "kai", room.room_id, {"episode_countdown": 3})
    with pytest.raises(psycopg.errors.NoDataFound):
        call(conn, "kai", "select public.get_room_sync_options(%s)", room.room_id)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        call(conn, None, "select public.get_room_sync_options(%s)", room.room_id)
    assert stored(conn, room.room_id) == (None,) * 7


def test_the_columns_refuse_invalid_values_written_directly(conn):
    room = make_room(conn, host="hana")
    for assignment in (
        "sync_drift_minor = 'NaN'",
        "sync_rebuffer_timeout = 'Infinity'",
        "sync_drift_perfect = 0.5",  # one threshold alone: they are one set
        "sync_drift_perfect = 2, sync_drift_good = 1, sync_drift_minor = 3",
        "sync_min_start_lead = -1",
    ):
        # numeric(6,2) itself refuses an infinity (22003); the CHECKs refuse the rest.
        refused = (psycopg.errors.CheckViolation, psycopg.errors.NumericValueOutOfRange)
        with pytest.raises(refused), conn.transaction():
            conn.execute(f"update public.rooms set {assignment} where room_id = %s", (room.room_id,))
