"""Exit reasons and limit orders in the portfolio read model (docs/exits.md).

`portfolio_orders` gets each order's `limit_price` and `exit_reason` (None for orders placed before them, as
their events record none); `portfolio_trades` gets the closing sell's `exit_reason`. Trades already in the
table are read as their events are (`domain.exits.recorded_reason`): `signal`, except the drawdown rule's
exits (a sell whose reason is `max_drawdown_percent`, filled when the trip closed). A column that is
already there is left alone, so running this again changes nothing.

Revision ID: 0010_exits
Revises: 0009_feed
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_exits"
down_revision = "0009_feed"
branch_labels = None
depends_on = None

COLUMNS = {
    "portfolio_orders": [sa.Column("limit_price", sa.Text, nullable=True),
                         sa.Column("exit_reason", sa.Text, nullable=True)],
    "portfolio_trades": [sa.Column("exit_reason", sa.Text, nullable=False, server_default="signal")],
}
DRAWDOWN_EXITS = """
UPDATE portfolio_trades SET exit_reason = 'max_drawdown_percent'
WHERE EXISTS (SELECT 1 FROM portfolio_orders o
              WHERE o.account = portfolio_trades.account AND o.symbol = portfolio_trades.symbol
                AND o.side = 'sell' AND o.status = 'filled' AND o.closed_at = portfolio_trades.exit_time
                AND o.reason = 'max_drawdown_percent')
"""


def existing(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    added = False
    for table, columns in COLUMNS.items():
        present = existing(table)
        for column in columns:
            if column.name not in present:
                op.add_column(table, column)
                added = added or table == "portfolio_trades"
    if added:
        op.execute(DRAWDOWN_EXITS)


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        present = existing(table)
        with op.batch_alter_table(table) as batch:  # SQLite before 3.35 cannot drop a column in place
            for column in columns:
                if column.name in present:
                    batch.drop_column(column.name)
