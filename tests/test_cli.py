"""CLI polish: --help with examples for every command; database errors as one line and a hint."""

from __future__ import annotations

import pytest

from watchium_db import cli
from watchium_db.errors import RateLimited


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_help_with_examples(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([name, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"watchium-db {name}" in out


def test_a_database_error_is_one_line_and_its_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args: object) -> int:
        raise RateLimited("too many create_room requests", sqlstate="WD429", hint="Retry in 42 s.")

    monkeypatch.setitem(cli.COMMANDS, "status", cli.Command("status", "x", fail))
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["watchium-db: error: too many create_room requests", "hint: Retry in 42 s."]
