"""Errors the command-line tools and the launcher raise for the person at the keyboard."""

from __future__ import annotations


class SetupError(RuntimeError):
    """Something outside the database is missing or wrong: binaries, Docker, a URL.

    ``hint`` says what the user can do about it; the CLI prints it under the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
