"""Playback sync: host controls, presence heartbeats, sampled sync history, partitions, metrics.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from watchium_db.migration_sql import run_sql_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    run_sql_file(__file__, "downgrade")
