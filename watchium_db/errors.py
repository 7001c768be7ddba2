"""Errors: setup problems for the person at the keyboard, and database errors by SQLSTATE."""

from __future__ import annotations

from typing import Any, ClassVar


class SetupError(RuntimeError):
    """Something outside the database is missing or wrong: binaries, Docker, a URL.

    ``hint`` says what the user can do about it; the CLI prints it under the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class WatchiumError(Exception):
    """An error raised by a watchium-db SQL function, keyed by its SQLSTATE.

    Carries the database's message, hint and detail unchanged.
    """

    sqlstates: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        hint: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.hint = hint
        self.detail = detail

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class InvalidInput(WatchiumError):
    """22023 and other data exceptions (class 22): the message names the argument."""

    sqlstates = ("22023",)


class NotSignedIn(WatchiumError):
    """28000: the function acts for a user, and the caller has no identity."""

    sqlstates = ("28000",)


class Forbidden(WatchiumError):
    """42501: not a member, not the host, not your record."""

    sqlstates = ("42501",)


class NotFound(WatchiumError):
    """P0002: no such room, member or comment — or not visible to the caller."""

    sqlstates = ("P0002",)


class Conflict(WatchiumError):
    """WD409 (and unique violations): the request conflicts with the current state."""

    sqlstates = ("WD409", "23505")


class RateLimited(WatchiumError):
    """WD429: too many requests; the hint says when to retry."""

    sqlstates = ("WD429",)


class Busy(WatchiumError):
    """55P03: a lock the call needs was held past its lock timeout (the ``rpc_lock_timeout``
    setting, 2 s by default); nothing was changed. Retry after a short pause."""

    sqlstates = ("55P03",)


ERROR_CLASSES: tuple[type[WatchiumError], ...] = (
    InvalidInput,
    NotSignedIn,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    Busy,
)


def from_database_error(exc: Any) -> WatchiumError:
    """Map a psycopg error to the watchium-db exception of its SQLSTATE."""
    sqlstate: str | None = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc)).strip()
    hint = getattr(diag, "message_hint", None)
    detail = getattr(diag, "message_detail", None)
    cls: type[WatchiumError] = WatchiumError
    for candidate in ERROR_CLASSES:
        if sqlstate in candidate.sqlstates:
            cls = candidate
            break
    else:
        if sqlstate is not None and sqlstate.startswith("22"):
            cls = InvalidInput
    return cls(message, sqlstate=sqlstate, hint=hint, detail=detail)


class TransactionInProgress(RuntimeError):
    """A client call was given a connection that already has a transaction open.

    Each call is its own transaction: inside the caller's transaction it would become a
    savepoint and leave the role and claims it sets (and the locks it takes) in place until the
    caller commits. Commit or roll back first, or give the client its own connection or a pool.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message} (hint: {hint})")
        self.message = message
        self.hint = hint
