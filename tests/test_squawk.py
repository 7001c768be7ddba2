"""squawk over every revision's SQL, with the project's .squawk.toml.

Files are discovered, never listed: a new revision is linted as soon as it exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".squawk.toml"
VERSIONS = ROOT / "migrations" / "versions"
SQUAWK = Path(sys.executable).with_name("squawk")

#: Rules a downgrade breaks by design (it drops what its upgrade created); see .squawk.toml.
DOWNGRADE_ONLY_EXCLUDED = ("ban-drop-table", "ban-drop-view", "ban-drop-function", "ban-drop-column")

SQL_FILES = sorted(VERSIONS.glob("*.upgrade.sql")) + sorted(VERSIONS.glob("*.downgrade.sql"))


def squawk(path: Path, *, downgrade: bool = False) -> list[dict[str, object]]:
    """squawk's findings for one file, as JSON objects (file, line, rule_name, message…)."""
    argv = [str(SQUAWK), "--config", str(CONFIG), "--reporter", "json"]
    if downgrade:
        # --exclude replaces the config's excluded_rules, so pass both lists.
        configured = tomllib.loads(CONFIG.read_text())["excluded_rules"]
        argv += ["--exclude", ",".join([*configured, *DOWNGRADE_ONLY_EXCLUDED])]
    proc = subprocess.run([*argv, str(path)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode in (0, 1), f"squawk failed to run: {proc.stderr}"
    findings = json.loads(proc.stdout or "[]")
    assert (proc.returncode == 1) == bool(findings), (proc.returncode, proc.stdout, proc.stderr)
    return list(findings)


def describe(findings: list[dict[str, object]]) -> str:
    return "\n".join(
        f"{f['file']}:{int(str(f['line'])) + 1}: {f['rule_name']}: {f['message']}" for f in findings
    )


def test_squawk_is_installed_and_every_revision_has_sql():
    assert SQUAWK.exists(), "squawk comes with the dev extra (pip install -e '.[dev]')"
    assert len(SQL_FILES) >= 2
    assert len(list(VERSIONS.glob("*.upgrade.sql"))) == len(list(VERSIONS.glob("*.downgrade.sql")))


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_revision_sql_passes_squawk(path):
    findings = squawk(path, downgrade=path.name.endswith(".downgrade.sql"))
    assert findings == [], "squawk:\n" + describe(findings)


BAD_REVISION = """\
alter table public.rooms add column x int not null default random();
create index rooms_title_idx on public.rooms (title);
create table public.audit (id bigserial primary key);
drop table public.comments;
"""


def test_squawk_flags_a_bad_revision(tmp_path):
    # A copy of the checks applied to known-bad SQL: they must not pass silently.
    bad = tmp_path / "0099_bad.upgrade.sql"
    bad.write_text(BAD_REVISION)
    rules = {str(f["rule_name"]) for f in squawk(bad)}
    assert {
        "adding-field-with-default",  # volatile default: rewrites the table under a lock
        "require-concurrent-index-creation",  # blocks writes on an existing table
        "prefer-identity",  # bigserial instead of an identity column
        "ban-drop-table",  # upgrades must not drop tables
    } <= rules, rules


def test_downgrade_exclusions_do_not_apply_to_upgrades(tmp_path):
    sql = "drop table public.comments;\n"
    (tmp_path / "a.upgrade.sql").write_text(sql)
    (tmp_path / "a.downgrade.sql").write_text(sql)
    assert "ban-drop-table" in {f["rule_name"] for f in squawk(tmp_path / "a.upgrade.sql")}
    assert squawk(tmp_path / "a.downgrade.sql", downgrade=True) == []


def test_index_on_a_table_of_the_same_revision_is_accepted(tmp_path):
    # A new table is empty: building its index without CONCURRENTLY blocks nobody.
    path = tmp_path / "0099_new.upgrade.sql"
    path.write_text("create table public.t (id bigint primary key, a text);\ncreate index t_a_idx on public.t (a);\n")
    assert squawk(path) == []
