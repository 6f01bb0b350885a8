"""A user strategy's failure in the signals read model (docs/strategies.md): `signals_latest.error`.

Empty for every row already there: a built-in predictor never fails, and a strategy's recorded error is
shown again once `tradeledger rebuild signals` (or the next signal of that market) rewrites the row. A column
that is already there is left alone.

Revision ID: 0014_signal_error
Revises: 0013_state_checkpoints
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_signal_error"
down_revision = "0013_state_checkpoints"
branch_labels = None
depends_on = None

TABLE = "signals_latest"
COLUMN = "error"


def present() -> bool:
    return COLUMN in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}


def upgrade() -> None:
    if not present():
        op.add_column(TABLE, sa.Column(COLUMN, sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    if present():
        with op.batch_alter_table(TABLE) as batch:  # SQLite before 3.35 cannot drop a column in place
            batch.drop_column(COLUMN)
