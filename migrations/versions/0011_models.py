"""The model scoreboard read model (issue 15): scores, calibration buckets, and the fold's working state.

The tables mirror projections/models_rows.py (docs/models.md). Scores and
buckets are what the API reads; the markets (last candle, pending calls),
entries (open buy orders' voters) and trips (round trips in progress) are
the fold's working state, kept so a runner restarts where it stopped. It is
a read model: `tradeledger rebuild` fills it from the log, and so does the
runner on its first catch-up after this migration.

Revision ID: 0011_models
Revises: 0010_exits
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_models"
down_revision = "0010_exits"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
MONEY = sa.Text


def _key(name: str, type_: object = sa.Text) -> sa.Column:
    return sa.Column(name, type_, primary_key=True)


def _col(name: str, type_: object = sa.Text, nullable: bool = False) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable)


def tables() -> dict[str, tuple[sa.Column, ...]]:
    # Fresh Column objects on every call: a Column can belong to one Table only.
    return {
        "models_scores": (
            _key("model"), _col("role"), _col("predictions", sa.BigInteger), _col("up_calls", sa.BigInteger),
            _col("down_calls", sa.BigInteger), _col("hits", sa.BigInteger), _col("brier_sum", sa.Float),
            _col("trades", sa.BigInteger), _col("wins", sa.BigInteger),
            _col("pnl", MONEY), _col("recent_trades", sa.JSON), _col("last_candle_time", TIME, nullable=True),
        ),
        "models_recent": (
            _key("model"), _key("slot", sa.Integer), _col("hit", sa.Boolean), _col("confidence", sa.Float),
        ),
        "models_calibration": (
            _key("model"), _key("bucket", sa.Integer), _col("count", sa.BigInteger),
            _col("confidence_sum", sa.Float), _col("hits", sa.BigInteger),
        ),
        "models_markets": (
            _key("market_id"), _col("close", MONEY), _col("candle_time", TIME),
            _col("signal_time", TIME, nullable=True), _col("calls", sa.JSON),
        ),
        "models_entries": (_key("order_id"), _col("voters", sa.JSON)),
        "models_trips": (
            _key("account_id"), _key("symbol"), _col("quantity", MONEY), _col("pnl", MONEY), _col("voters", sa.JSON),
        ),
    }


def existing() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    present = existing()  # a table already there is left alone, so running this again changes nothing
    for name, columns in tables().items():
        if name not in present:
            op.create_table(name, *columns)


def downgrade() -> None:
    present = existing()
    for name in reversed(tables()):
        if name in present:
            op.drop_table(name)
