"""An app team's tests against watchium-db, using only the pytest plugin's fixtures.

No conftest.py: installing watchium-db registers the plugin (the ``watchium_db`` pytest11 entry
point), which provides ``watchium_db_url``, ``watchium_conn``, ``watchium_client``, and the
helpers ``as_user`` and ``make_room`` below.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from watchium_db.client import Client
from watchium_db.errors import Forbidden
from watchium_db.testing import as_user, make_room


def test_members_see_the_room_and_its_members(
    watchium_conn: psycopg.Connection[Any], watchium_client: Client
) -> None:
    room = make_room(watchium_conn, host="hana", members=["mika", "ren"])
    details = watchium_client.as_user("mika").get_room(room.room_id)
    assert [m.user_id for m in details.members] == ["hana", "mika", "ren"]
    assert details.room.host_user_id == "hana" and not details.is_host


def test_only_the_host_controls_playback(watchium_conn: psycopg.Connection[Any]) -> None:
    room = make_room(watchium_conn, host="hana", members=["mika"])
    # Raw SQL, as PostgREST would run it:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(watchium_conn, "mika") as c:
        c.execute("select public.seek_to_time(%s, 30)", (room.room_id,))
    client = Client(watchium_conn)
    with pytest.raises(Forbidden):  # the same through the typed client
        client.as_user("mika").seek_to_time(room.room_id, 30)
    assert client.as_user("hana").seek_to_time(room.room_id, 30).current_time == 30


def test_private_rooms_need_the_key(watchium_conn: psycopg.Connection[Any]) -> None:
    room = make_room(watchium_conn, host="hana", private=True)
    client = Client(watchium_conn)
    ren = client.as_user("ren")
    wrong = ren.join_room(room.room_id, access_key="000000", username="Ren")
    assert wrong.status == "invalid_access_key"
    joined = ren.join_room(room.room_id, access_key=room.access_key, username="Ren")
    assert joined.joined
