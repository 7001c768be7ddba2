"""Released revisions are immutable: their files match migrations/checksums.json."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from watchium_db.devtools import release_checksums as rc

ROOT = Path(__file__).resolve().parent.parent
RELEASE_HEADING = re.compile(r"^## \[\d+\.\d+\.\d+\]", re.MULTILINE)


def test_released_revision_files_are_unchanged():
    assert rc.problems() == []


def test_checksums_are_recorded_once_a_release_is_tagged():
    released = bool(RELEASE_HEADING.search((ROOT / "CHANGELOG.md").read_text(encoding="utf-8")))
    recorded = rc.load()
    assert bool(recorded) == released, (
        "CHANGELOG.md has a release but migrations/checksums.json is empty: run "
        "`python -m watchium_db.devtools.release_checksums write`"
        if released
        else "migrations/checksums.json lists files, but CHANGELOG.md has no release yet"
    )
    for name, digest in recorded.items():
        assert name.startswith("versions/") and re.fullmatch(r"[0-9a-f]{64}", digest), name


@pytest.fixture
def migrations_copy(tmp_path):
    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations" / "versions", copy / "versions",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / rc.CHECKSUMS_FILE).write_text("{}\n")
    return copy


def test_write_records_every_revision_file(migrations_copy):
    recorded = rc.write(migrations_copy)
    names = {p.name for p in (ROOT / "migrations" / "versions").iterdir() if p.name.endswith(rc.REVISION_SUFFIXES)}
    assert {Path(n).name for n in recorded} == names
    assert any(n.endswith(".upgrade.sql") for n in recorded) and any(n.endswith(".py") for n in recorded)
    assert rc.problems(migrations_copy) == []


def test_a_modified_released_file_is_detected(migrations_copy):
    rc.write(migrations_copy)
    target = sorted((migrations_copy / "versions").glob("*.upgrade.sql"))[0]
    target.write_text(target.read_text() + "\n-- a harmless-looking edit\n")
    found = rc.problems(migrations_copy)
    assert len(found) == 1 and target.name in found[0] and "released with sha256" in found[0]
    with pytest.raises(ValueError, match="released revisions changed"):
        rc.write(migrations_copy)


def test_a_missing_released_file_is_detected(migrations_copy):
    rc.write(migrations_copy)
    target = sorted((migrations_copy / "versions").glob("*.downgrade.sql"))[-1]
    target.unlink()
    assert rc.problems(migrations_copy) == [f"versions/{target.name}: released, but missing"]


def test_new_revisions_after_a_release_are_added_and_old_entries_kept(migrations_copy):
    first = rc.write(migrations_copy)
    (migrations_copy / "versions" / "9999_later.upgrade.sql").write_text("select 1;\n")
    second = rc.write(migrations_copy)
    assert set(second) == set(first) | {"versions/9999_later.upgrade.sql"}
    assert {k: second[k] for k in first} == first


def test_cli_check_fails_on_a_modified_file(migrations_copy):
    rc.write(migrations_copy)
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "watchium_db.devtools.release_checksums", "check", "--migrations", str(migrations_copy)],
        capture_output=True, text=True,
    )
    assert run().returncode == 0
    target = sorted((migrations_copy / "versions").glob("*.py"))[0]
    target.write_text(target.read_text().replace("def upgrade", "def  upgrade"))
    proc = run()
    assert proc.returncode == 1 and target.name in proc.stderr
