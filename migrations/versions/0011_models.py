"""The model scoreboard read model (issue 15): filled in by the scoreboard work.

Revision ID: 0011_models
Revises: 0010_exits
Create Date: 2026-12-02
"""

from __future__ import annotations

revision = "0011_models"
down_revision = "0010_exits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
