"""Schemas and roles: the public API schema, the private schema, and the Supabase roles.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from watchium_db.migration_sql import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(__file__, "upgrade")


def downgrade() -> None:
    run_sql_file(__file__, "downgrade")
