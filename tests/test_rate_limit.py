"""check_rate_limit (0003): exact under concurrency, any action name, own budget only."""

from __future__ import annotations

import json
import threading
import uuid

import psycopg
import pytest

from tests.sync_factories import as_service, one
from watchium_db.testing import as_user

CALL = "select public.check_rate_limit(%s, %s, %s, %s)"


def _concurrent_calls(url: str, user: str, action: str, callers: int, limit: int) -> list[bool]:
    barrier = threading.Barrier(callers)
    results: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("select 1")
                with conn.transaction():
                    conn.execute(
                        "select set_config('request.jwt.claims', %s, true)",
                        (json.dumps({"sub": user, "role": "authenticated"}),),
                    )
                    conn.execute("set local role authenticated")
                    barrier.wait(timeout=10)
                    row = conn.execute(CALL, (user, action, 60, limit)).fetchone()
                assert row is not None
                with lock:
                    results.append(row[0])
        except BaseException as exc:  # reported by the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


def test_exact_under_16_concurrent_callers(conn, watchium_db_url):
    for _attempt in range(3):
        action = f"burst_{uuid.uuid4().hex[:8]}"
        results = _concurrent_calls(watchium_db_url, "alice", action, callers=16, limit=10)
        windows = one(
            conn,
            "select count(*) from watchium_private.rate_limit_counters where action = %s",
            (action,),
        )
        if windows == 1:  # not split by a window boundary: the count is exact
            break
    assert len(results) == 16
    assert results.count(True) == 10
    assert results.count(False) == 6
    assert (
        one(
            conn,
            "select request_count from watchium_private.rate_limit_counters where action = %s",
            (action,),
        )
        == 16
    )


@pytest.mark.parametrize("action", ["sync_control", "comment", "join_attempt", "never_seen_before"])
def test_any_action_name_is_limited(conn, action):
    """The seed counted sync_states rows, so actions outside its event types were never limited."""
    results = []
    for _ in range(4):
        with as_user(conn, "alice") as c:
            results.append(one(c, CALL, ("alice", action, 1, 3)))
    assert results == [True, True, True, False]


def test_callers_cannot_spend_another_users_budget(conn):
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "mallory") as c:
        c.execute(CALL, ("alice", "comment", 1, 3))
    assert exc.value.sqlstate == "42501" and "p_user_id" in str(exc.value)
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "mallory") as c:
        c.execute(CALL, (None, "comment", 1, 3))
    assert exc.value.sqlstate == "42501"
    assert one(conn, "select count(*) from watchium_private.rate_limit_counters") == 0
    with pytest.raises(psycopg.Error) as exc, as_user(conn, None, role="anon") as c:
        c.execute(CALL, ("alice", "comment", 1, 3))
    assert exc.value.sqlstate == "42501"


def test_trusted_callers_may_spend_a_users_budget(conn):
    with as_service(conn) as c:
        assert [one(c, CALL, ("alice", "comment", 1, 2)) for _ in range(2)] == [True, True]
    with as_user(conn, "alice") as c:
        assert one(c, CALL, ("alice", "comment", 1, 2)) is False
    assert one(conn, CALL, ("bob", "comment", 1, 2)) is True  # the owner connection


@pytest.mark.parametrize(
    ("action", "window", "limit", "argument"),
    [
        ("Bad Name", 1, 10, "p_action"),
        ("", 1, 10, "p_action"),
        ("ok", 0, 10, "p_window_minutes"),
        ("ok", 1441, 10, "p_window_minutes"),
        ("ok", 1, 0, "p_max_requests"),
        ("ok", 1, None, "p_max_requests"),
    ],
)
def test_arguments_are_validated(conn, action, window, limit, argument):
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(CALL, ("alice", action, window, limit))
    assert exc.value.sqlstate == "22023" and argument in str(exc.value)


def test_every_sync_write_rpc_has_a_documented_rule(conn):
    rules = dict(
        conn.execute(
            "select action, max_requests from watchium_private.rate_limit_rules"
            " where action in ('sync_control', 'realtime_metrics')"
        ).fetchall()
    )
    assert rules == {"sync_control": 120, "realtime_metrics": 12}
    # Both heartbeat forms are limited per member by the presence row itself (no counter).
    assert (
        conn.execute(
            "select value #>> '{}' from watchium_private.settings"
            " where key = 'heartbeat_min_interval'"
        ).fetchone()[0]
        == "1 second"
    )


def test_windows_of_different_lengths_count_separately(conn):
    """A 1-minute and a 60-minute limit of one action never share a counter, even when
    their windows start at the same instant."""
    with as_user(conn, "alice") as c:
        assert one(c, CALL, ("alice", "comment", 1, 1)) is True
        assert one(c, CALL, ("alice", "comment", 60, 1)) is True
        assert one(c, CALL, ("alice", "comment", 1, 1)) is False
        assert one(c, CALL, ("alice", "comment", 60, 1)) is False
    rows = conn.execute(
        "select window_minutes, request_count from watchium_private.rate_limit_counters"
        " where subject = 'alice' and action = 'comment' order by window_minutes"
    ).fetchall()
    assert rows == [(1, 2), (60, 2)]


def _custom_counters(conn, user: str) -> int:
    return one(
        conn,
        "select count(*) from watchium_private.rate_limit_counters as c where c.subject = %s"
        " and not exists (select from watchium_private.rate_limit_rules as r where r.action = c.action)",
        (user,),
    )


def test_a_client_cannot_grow_the_counter_table_without_bound(conn):
    """One row per new action name: the seed let a client write rows as fast as it could call.
    A user holds at most max_rate_limit_actions_per_user live counters of actions not ours."""
    assert (
        one(
            conn,
            "select value::integer from watchium_private.settings"
            " where key = 'max_rate_limit_actions_per_user'",
        )
        == 100
    )
    with as_user(conn, "alice") as c:
        for i in range(100):
            assert one(c, CALL, ("alice", f"custom_{i}", 60, 5)) is True
    for i in range(100, 130):
        with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
            c.execute(CALL, ("alice", f"custom_{i}", 60, 5))
        assert exc.value.sqlstate == "WD429" and "p_action" in str(exc.value)
    # The same name in another window length is another counter: refused too.
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(CALL, ("alice", "custom_0", 1, 5))
    assert exc.value.sqlstate == "WD429"
    assert _custom_counters(conn, "alice") == 100
    # Counters already started keep counting; our own actions and other users are unaffected.
    with as_user(conn, "alice") as c:
        assert one(c, CALL, ("alice", "custom_7", 60, 5)) is True
        assert one(c, CALL, ("alice", "create_room", 60, 5)) is True
    with as_user(conn, "bob") as c:
        assert one(c, CALL, ("bob", "custom_500", 60, 5)) is True
    # A counter whose window has ended no longer counts: new names are accepted again.
    conn.execute(
        "update watchium_private.rate_limit_counters set window_start = window_start - interval '2 hours'"
        " where subject = 'alice' and action = 'custom_3'"
    )
    with as_user(conn, "alice") as c:
        assert one(c, CALL, ("alice", "custom_new", 60, 5)) is True
    assert _custom_counters(conn, "alice") == 101  # 100 live + 1 ended, deleted by maintenance


def test_check_rate_limit_is_rate_limited_itself(conn):
    rule = conn.execute(
        "select max_requests, window_minutes from watchium_private.rate_limit_rules"
        " where action = 'check_rate_limit'"
    ).fetchone()
    assert rule == (600, 1)
    conn.execute(
        "update watchium_private.rate_limit_rules set max_requests = 5 where action = 'check_rate_limit'"
    )
    with as_user(conn, "alice") as c:
        for _ in range(5):
            one(c, CALL, ("alice", "comment", 1, 100))
    with pytest.raises(psycopg.Error) as exc, as_user(conn, "alice") as c:
        c.execute(CALL, ("alice", "other", 1, 100))
    assert exc.value.sqlstate == "WD429" and "check_rate_limit" in str(exc.value)
    with as_user(conn, "bob") as c:
        assert one(c, CALL, ("bob", "comment", 1, 100)) is True


def test_the_custom_counter_cap_is_exact_under_concurrent_new_actions(watchium_db_url):
    """One slot left under max_rate_limit_actions_per_user and eight callers each starting a
    new action at once: exactly one gets it, the others get WD429, and no counter is left over."""
    user = f"cap_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(watchium_db_url, autocommit=True) as admin:
        cap = one(
            admin,
            "select value::integer from watchium_private.settings"
            " where key = 'max_rate_limit_actions_per_user'",
        )
        admin.execute(
            "insert into watchium_private.rate_limit_counters"
            " (subject, action, window_minutes, window_start, request_count)"
            " select %s, 'held_' || i, 60, date_trunc('hour', now()), 1"
            " from generate_series(1, %s - 1) as i",
            (user, cap),
        )
        try:
            barrier = threading.Barrier(8)
            outcomes: list[str] = []
            lock = threading.Lock()

            def call(i: int) -> None:
                with psycopg.connect(watchium_db_url, autocommit=True) as conn:
                    try:
                        with conn.transaction():
                            conn.execute(
                                "select set_config('request.jwt.claims', %s, true)",
                                (json.dumps({"sub": user, "role": "authenticated"}),),
                            )
                            conn.execute("set local role authenticated")
                            barrier.wait(timeout=10)
                            conn.execute(CALL, (user, f"new_{i}", 60, 5))
                        outcome = "ok"
                    except psycopg.Error as exc:
                        outcome = str(exc.sqlstate)
                with lock:
                    outcomes.append(outcome)

            threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert sorted(outcomes) == ["WD429"] * 7 + ["ok"]
            assert _custom_counters(admin, user) == cap
        finally:
            admin.execute("delete from watchium_private.rate_limit_counters where subject = %s", (user,))
