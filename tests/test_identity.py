"""Identity comes from the token: request.jwt.claims, else app.current_user_id."""

from __future__ import annotations

import json

import pytest
from psycopg import errors

from watchium_db.testing import as_user

WHO = "select watchium_private.current_user_id()"


def test_sub_claim_is_the_user(conn):
    with as_user(conn, "alice") as c:
        assert c.execute("select current_user").fetchone() == ("authenticated",)
    assert conn.execute(WHO).fetchone() == (None,)  # claims were transaction-local
    with conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": "alice"}),))
        assert conn.execute(WHO).fetchone() == ("alice",)


def test_text_user_ids_are_not_uuids(conn):
    with conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": "discord|1234"}),))
        assert conn.execute(WHO).fetchone() == ("discord|1234",)


def test_plain_postgres_fallback_setting(conn):
    with conn.transaction():
        conn.execute("set local app.current_user_id = 'bob'")
        assert conn.execute(WHO).fetchone() == ("bob",)
    assert conn.execute(WHO).fetchone() == (None,)


def test_claims_win_over_fallback_and_anonymous_jwt_stays_anonymous(conn):
    with conn.transaction():
        conn.execute("set local app.current_user_id = 'bob'")
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"role": "anon"}),))
        assert conn.execute(WHO).fetchone() == (None,)


def test_require_user_id_rejects_anonymous_with_28000(conn):
    with pytest.raises(errors.InvalidAuthorizationSpecification) as exc:
        conn.execute("select watchium_private.require_user_id()")
    assert exc.value.sqlstate == "28000"
    assert "not signed in" in str(exc.value)
    assert exc.value.diag.message_hint


def test_caller_is_trusted_only_for_service_role_and_owner(conn):
    assert conn.execute("select watchium_private.caller_is_trusted()").fetchone() == (True,)
    conn.execute("grant execute on function watchium_private.caller_is_trusted() to anon, authenticated, service_role")
    for role, trusted in (("anon", False), ("authenticated", False), ("service_role", True)):
        with as_user(conn, "x", role=role) as c:
            assert c.execute("select watchium_private.caller_is_trusted()").fetchone() == (trusted,)


def test_nobody_can_spend_another_users_rate_limit(conn):
    """The original let any caller poison another user's rate limit by passing their id."""
    with pytest.raises(errors.InsufficientPrivilege) as exc, as_user(conn, "mallory") as c:
        c.execute("select public.check_rate_limit('alice', 'comment', 1, 1)")
    assert "p_user_id" in str(exc.value)
    assert conn.execute("select count(*) from watchium_private.rate_limit_counters").fetchone() == (0,)
    with as_user(conn, "alice") as c:
        assert c.execute("select public.check_rate_limit('alice', 'comment', 1, 1)").fetchone() == (True,)
    with as_user(conn, None, role="service_role") as c:
        assert c.execute("select public.check_rate_limit('alice', 'comment', 1, 1)").fetchone() == (False,)


def test_anon_cannot_call_check_rate_limit(conn):
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, None, role="anon") as c:
        c.execute("select public.check_rate_limit('alice', 'comment')")
