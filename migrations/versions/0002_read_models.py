"""Read models and the projection tracking table.

Amounts are text holding exact decimal strings (SQLite has no exact numeric
type). Times are `timestamptz` on PostgreSQL; on SQLite the column holds
fixed-width ISO-8601 UTC text (see projections.rows.UtcDateTime).
The tables mirror projections/*.py; tests/test_projections_schema.py checks
that they agree.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
MONEY = sa.Text


def _key(name: str, type_: object = sa.Text) -> sa.Column:
    return sa.Column(name, type_, primary_key=True)


def _col(name: str, type_: object = sa.Text, nullable: bool = False) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable)


def tables() -> dict[str, tuple[sa.Column, ...]]:
    # Fresh Column objects on every call: a Column can belong to one Table only, and the
    # tests migrate many databases in one process.
    return {
        "projection_tracking": (
            _key("name"), _col("position", sa.BigInteger), _col("error", nullable=True),
            _col("error_position", sa.BigInteger, nullable=True),
        ),
        "portfolio_markets": (_key("market_id"), _col("symbol"), _col("timeframe")),
        "portfolio_prices": (_key("symbol"), _col("price", MONEY), _col("at", TIME)),
        "portfolio_accounts": (
            _key("account"), _col("account_id"), _col("quote_currency"), _col("initial_balance", MONEY),
            _col("cash", MONEY), _col("realised_pnl", MONEY), _col("fees", MONEY), _col("equity", MONEY),
            _col("halted", sa.Boolean), _col("halted_rule", nullable=True), _col("halted_reason", nullable=True),
            _col("opened_at", TIME), _col("mark_time", TIME, nullable=True), _col("mark_day", sa.Date, nullable=True),
            _col("day_open_equity", MONEY), _col("trades_closed", sa.Integer),
        ),
        "portfolio_positions": (
            _key("account"), _key("symbol"), _col("quantity", MONEY), _col("cost", MONEY),
            _col("average_price", MONEY), _col("last_price", MONEY, nullable=True), _col("unrealised_pnl", MONEY),
            _col("opened_at", TIME), _col("entry_quantity", MONEY), _col("entry_value", MONEY),
            _col("exit_quantity", MONEY), _col("exit_value", MONEY), _col("trip_fees", MONEY), _col("trip_pnl", MONEY),
        ),
        "portfolio_orders": (
            _key("order_id"), _col("account"), _col("symbol"), _col("side"), _col("quantity", MONEY),
            _col("order_type"), _col("placed_at", TIME), _col("signal_ref"), _col("reason"), _col("status"),
            _col("closed_at", TIME, nullable=True), _col("fill_price", MONEY, nullable=True),
            _col("filled_quantity", MONEY, nullable=True), _col("fee", MONEY, nullable=True),
            _col("close_reason", nullable=True),
        ),
        "portfolio_fills": (
            _key("position", sa.BigInteger), _col("account"), _col("order_id"), _col("symbol"), _col("side"),
            _col("price", MONEY), _col("quantity", MONEY), _col("fee", MONEY), _col("realised_pnl", MONEY),
            _col("filled_at", TIME),
        ),
        "portfolio_trades": (
            _key("account"), _key("seq", sa.Integer), _col("symbol"), _col("entry_time", TIME), _col("exit_time", TIME),
            _col("entry_price", MONEY), _col("exit_price", MONEY), _col("quantity", MONEY), _col("fees", MONEY),
            _col("pnl", MONEY),
        ),
        "portfolio_equity": (_key("account"), _key("time", TIME), _col("equity", MONEY)),
        "portfolio_daily_pnl": (_key("account"), _key("day", sa.Date), _col("pnl", MONEY)),
        "signals_latest": (
            _key("symbol"), _key("timeframe"), _col("candle_time", TIME), _col("prediction"),
            _col("confidence", sa.Float), _col("is_actionable", sa.Boolean), _col("data_quality", sa.Float),
            _col("model_name"), _col("model_version"), _col("features_used", sa.JSON), _col("feature_values", sa.JSON),
            _col("individual_predictions", sa.JSON), _col("generated_at", TIME), _col("fresh_until", TIME),
            _col("position", sa.BigInteger),
        ),
        "health_agent_runs": (
            _key("run_id"), _col("version"), _col("host"), _col("pid", sa.Integer), _col("model"),
            _col("config_digest"), _col("started_at", TIME), _col("started_position", sa.BigInteger),
            _col("last_heartbeat_at", TIME, nullable=True), _col("candles_processed", sa.BigInteger),
            _col("feed_lag", sa.Float), _col("stopped", sa.Boolean), _col("stopped_at", TIME, nullable=True),
            _col("stop_reason", nullable=True), _col("clean", sa.Boolean, nullable=True),
        ),
        "activity_feed": (
            _key("position", sa.BigInteger), _col("at", TIME), _col("type"), _col("stream"), _col("text"),
        ),
        "connections_gateways": (
            _key("gateway_id"), _col("kind"), _col("host"), _col("pid", sa.Integer), _col("started_at", TIME),
            _col("stopped_at", TIME, nullable=True), _col("stop_reason", nullable=True),
        ),
        "connections_sessions": (
            _key("gateway_id"), _key("session_id"), _col("channel"), _col("peer"), _col("connected_at", TIME),
        ),
    }


def upgrade() -> None:
    for name, columns in tables().items():
        op.create_table(name, *columns)


def downgrade() -> None:
    for name in reversed(tables()):
        op.drop_table(name)
