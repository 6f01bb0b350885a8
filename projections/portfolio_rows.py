"""The portfolio read model's rows and tables (the rules that fill them are in projections.portfolio)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.domain.exits import SIGNAL
from tradeledger.domain.values import OrderType, Side
from tradeledger.projections.rows import RowTable


class MarketRow(msgspec.Struct, kw_only=True):
    market_id: UUID
    symbol: str
    timeframe: str


class PriceRow(msgspec.Struct, kw_only=True):
    symbol: str
    price: Decimal
    at: datetime


class AccountRow(msgspec.Struct, kw_only=True):
    account: str
    account_id: UUID
    quote_currency: str
    initial_balance: Decimal
    cash: Decimal
    realised_pnl: Decimal
    fees: Decimal
    equity: Decimal
    halted: bool
    halted_rule: str | None
    halted_reason: str | None
    opened_at: datetime
    mark_time: datetime | None
    mark_day: date | None
    day_open_equity: Decimal
    trades_closed: int
    entries_stopped: bool = False  # stop_entry (domain.control); migration 0012_entries


class PositionRow(msgspec.Struct, kw_only=True):
    account: str
    symbol: str
    quantity: Decimal
    cost: Decimal
    average_price: Decimal
    last_price: Decimal | None
    unrealised_pnl: Decimal
    opened_at: datetime
    # The round trip in progress: what closing it will report.
    entry_quantity: Decimal
    entry_value: Decimal
    exit_quantity: Decimal
    exit_value: Decimal
    trip_fees: Decimal
    trip_pnl: Decimal

    @property
    def value(self) -> Decimal:
        return self.cost if self.last_price is None else self.quantity * self.last_price


class OrderRow(msgspec.Struct, kw_only=True):
    order_id: UUID
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    placed_at: datetime
    signal_ref: str
    reason: str
    status: str  # open, filled, cancelled
    closed_at: datetime | None = None
    fill_price: Decimal | None = None
    filled_quantity: Decimal | None = None
    fee: Decimal | None = None
    close_reason: str | None = None
    limit_price: Decimal | None = None  # a limit or stop order's level
    exit_reason: str | None = None  # a sell's (domain.exits); None before exit reasons were recorded


class FillRow(msgspec.Struct, kw_only=True):
    position: int
    account: str
    order_id: UUID
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    realised_pnl: Decimal
    filled_at: datetime


class TradeRow(msgspec.Struct, kw_only=True):
    account: str
    seq: int
    symbol: str
    entry_time: datetime
    exit_time: datetime
    entry_price: Decimal
    exit_price: Decimal
    quantity: Decimal
    fees: Decimal
    pnl: Decimal
    exit_reason: str = SIGNAL  # the closing sell's (domain.exits.recorded_reason)


class EquityRow(msgspec.Struct, kw_only=True):
    account: str
    time: datetime
    equity: Decimal


class DailyPnlRow(msgspec.Struct, kw_only=True):
    account: str
    day: date
    pnl: Decimal


MARKETS = RowTable.of(MarketRow, "portfolio_markets", primary_key=["market_id"])
PRICES = RowTable.of(PriceRow, "portfolio_prices", primary_key=["symbol"])
ACCOUNTS = RowTable.of(AccountRow, "portfolio_accounts", primary_key=["account"],
                       types={"trades_closed": sa.Integer})
POSITIONS = RowTable.of(PositionRow, "portfolio_positions", primary_key=["account", "symbol"])
ORDERS = RowTable.of(OrderRow, "portfolio_orders", primary_key=["order_id"])
FILLS = RowTable.of(FillRow, "portfolio_fills", primary_key=["position"])
TRADES = RowTable.of(TradeRow, "portfolio_trades", primary_key=["account", "seq"], types={"seq": sa.Integer})
EQUITY = RowTable.of(EquityRow, "portfolio_equity", primary_key=["account", "time"])
DAILY_PNL = RowTable.of(DailyPnlRow, "portfolio_daily_pnl", primary_key=["account", "day"])
