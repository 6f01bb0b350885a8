"""Exit reasons and order types in the read models (issue 14): filled in by the exits work.

Revision ID: 0010_exits
Revises: 0009_feed
Create Date: 2026-12-02
"""

from __future__ import annotations

revision = "0010_exits"
down_revision = "0009_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
