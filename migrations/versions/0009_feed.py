"""The live feed in the agent runs read model: the feed's source and state, the last candle, reconnects.

The columns mirror `projections.health.AgentRunRow` (added in 0.3); rows of older runs get the defaults,
what their heartbeats (which had no such fields) decode to. A column that is already there is left alone,
so running this again changes nothing.

Revision ID: 0009_feed
Revises: 0005_merkle
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_feed"
down_revision = "0005_merkle"
branch_labels = None
depends_on = None

TABLE = "health_agent_runs"


def columns() -> list[sa.Column]:
    return [sa.Column("feed_source", sa.Text, nullable=False, server_default=""),
            sa.Column("feed_state", sa.Text, nullable=False, server_default=""),
            sa.Column("last_candle_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("reconnects", sa.BigInteger, nullable=False, server_default="0")]


def existing() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}


def upgrade() -> None:
    present = existing()
    for column in columns():
        if column.name not in present:
            op.add_column(TABLE, column)


def downgrade() -> None:
    present = existing()
    with op.batch_alter_table(TABLE) as batch:  # SQLite before 3.35 cannot drop a column in place
        for column in columns():
            if column.name in present:
                batch.drop_column(column.name)
