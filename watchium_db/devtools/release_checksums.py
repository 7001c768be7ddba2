"""Released revisions never change: ``migrations/checksums.json`` holds their sha256.

When a release is tagged (see CHANGELOG.md, "Releasing"),
``python -m watchium_db.devtools.release_checksums write`` records every revision file that exists
then (``NNNN_slug.py``, ``.upgrade.sql``, ``.downgrade.sql``). Entries are only ever added:
``write`` refuses to run when a recorded file has changed or disappeared. ``check`` (and the test
suite) fails in that case too, so a released migration can only be corrected by a new revision.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
CHECKSUMS_FILE = "checksums.json"
REVISION_SUFFIXES = (".py", ".upgrade.sql", ".downgrade.sql")


def revision_files(migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Every revision file under ``versions/``, as paths relative to ``migrations_dir``."""
    versions = migrations_dir / "versions"
    return sorted(
        path.relative_to(migrations_dir).as_posix()
        for path in versions.iterdir()
        if path.is_file() and path.name.endswith(REVISION_SUFFIXES)
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(migrations_dir: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """The recorded checksums; an absent file means nothing is released yet."""
    path = migrations_dir / CHECKSUMS_FILE
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
    ):
        raise ValueError(f"{CHECKSUMS_FILE} must map file names to sha256 hex digests")
    return loaded


def problems(migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Why the released revisions differ from what was recorded; empty when they do not."""
    found = []
    for name, expected in sorted(load(migrations_dir).items()):
        path = migrations_dir / name
        if not path.is_file():
            found.append(f"{name}: released, but missing")
        elif (actual := sha256_of(path)) != expected:
            found.append(f"{name}: released with sha256 {expected}, now {actual}")
    return found


def released_head(migrations_dir: Path = MIGRATIONS_DIR) -> str | None:
    """The newest released revision id (the head of the last release), or None before the
    first release: the highest ``revision = "…"`` among the released revision scripts."""
    revisions = []
    for name in load(migrations_dir):
        if name.endswith(".py"):
            text = (migrations_dir / name).read_text(encoding="utf-8")
            found = re.search(r'^revision\s*=\s*"([^"]+)"', text, flags=re.MULTILINE)
            if found:
                revisions.append(found.group(1))
    return max(revisions) if revisions else None


def write(migrations_dir: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """Record every current revision file; earlier entries must still match."""
    wrong = problems(migrations_dir)
    if wrong:
        raise ValueError("released revisions changed:\n" + "\n".join(wrong))
    recorded = load(migrations_dir)
    for name in revision_files(migrations_dir):
        recorded.setdefault(name, sha256_of(migrations_dir / name))
    text = json.dumps(dict(sorted(recorded.items())), indent=2) + "\n"
    (migrations_dir / CHECKSUMS_FILE).write_text(text, encoding="utf-8")
    return recorded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m watchium_db.devtools.release_checksums",
        description="Record (write) or verify (check) the checksums of released revisions.",
    )
    parser.add_argument("action", choices=["write", "check"])
    parser.add_argument("--migrations", type=Path, default=MIGRATIONS_DIR)
    args = parser.parse_args(argv)
    if args.action == "write":
        try:
            recorded = write(args.migrations)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"recorded {len(recorded)} released revision files in {CHECKSUMS_FILE}")
        return 0
    wrong = problems(args.migrations)
    for line in wrong:
        print(line, file=sys.stderr)
    if wrong:
        print("released revisions are immutable: add a new revision instead", file=sys.stderr)
        return 1
    print(f"{len(load(args.migrations))} released revision files unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
