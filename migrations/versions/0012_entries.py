"""The stop_entry switch in the portfolio read model (docs/agent.md, operator commands).

`portfolio_accounts` gets `entries_stopped`, false for every account already there: no store written before
this revision holds an `Account.EntriesSwitched`. A column that is already there is left alone.

Revision ID: 0012_entries
Revises: 0011_models
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_entries"
down_revision = "0011_models"
branch_labels = None
depends_on = None

TABLE = "portfolio_accounts"
COLUMN = "entries_stopped"


def present() -> bool:
    return COLUMN in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}


def upgrade() -> None:
    if not present():
        op.add_column(TABLE, sa.Column(COLUMN, sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    if present():
        with op.batch_alter_table(TABLE) as batch:  # SQLite before 3.35 cannot drop a column in place
            batch.drop_column(COLUMN)
