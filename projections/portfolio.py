"""The portfolio read model: cash, positions, orders, fills, round trips, equity curve, daily PnL.

Rules (what a trader and an auditor read from these rows):
- Cash, fees and realised PnL come from the fills' journal lines, the ledger's
  own postings; a position's cost is the sum of its `position:<SYMBOL>` lines.
- A position is valued at the last candle close of its symbol (any timeframe),
  or at cost before any candle was seen. Unrealised PnL = value - cost.
- Equity = cash + the value of every open position. It is marked at each
  candle's close time, one curve point per candle time; a fill re-marks the
  current point, so the point for a tick includes that tick's fills.
- Daily PnL is the change in equity over a UTC day. A candle counts to the day
  it opened in (the 23:55 candle closing at midnight closes that day); the first
  day starts from the initial balance, so the days sum to equity - initial balance.
- A round trip starts when a position opens from zero and ends when it is
  back at zero. Entry/exit prices are the quantity-weighted fill prices; fees
  are both legs' fees; pnl is the realised PnL net of those fees.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.domain.account import FEES, TRADING_INCOME, Account, cash_account, position_account
from tradeledger.domain.market import Market
from tradeledger.domain.values import JournalLine, OrderType, Side
from tradeledger.projections.fold import Fold, Handler, Projection
from tradeledger.projections.rows import MONEY, RowMismatch, RowSource, RowTable, Sink, UtcDateTime, metadata

ZERO = Decimal(0)


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


class EquityRow(msgspec.Struct, kw_only=True):
    account: str
    time: datetime
    equity: Decimal


class DailyPnlRow(msgspec.Struct, kw_only=True):
    account: str
    day: date
    pnl: Decimal


def _table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(name, metadata, *columns)


def _key(name: str, type_: Any = sa.Text) -> sa.Column[Any]:
    return sa.Column(name, type_, primary_key=True)


def _col(name: str, type_: Any = sa.Text, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=nullable)


MARKETS = RowTable(_table("portfolio_markets", _key("market_id"), _col("symbol"), _col("timeframe")), MarketRow)
PRICES = RowTable(_table("portfolio_prices", _key("symbol"), _col("price", MONEY), _col("at", UtcDateTime)),
                  PriceRow)
ACCOUNTS = RowTable(_table(
    "portfolio_accounts", _key("account"), _col("account_id"), _col("quote_currency"),
    _col("initial_balance", MONEY), _col("cash", MONEY), _col("realised_pnl", MONEY), _col("fees", MONEY),
    _col("equity", MONEY), _col("halted", sa.Boolean), _col("halted_rule", nullable=True),
    _col("halted_reason", nullable=True), _col("opened_at", UtcDateTime),
    _col("mark_time", UtcDateTime, nullable=True), _col("mark_day", sa.Date, nullable=True),
    _col("day_open_equity", MONEY), _col("trades_closed", sa.Integer),
), AccountRow)
POSITIONS = RowTable(_table(
    "portfolio_positions", _key("account"), _key("symbol"), _col("quantity", MONEY), _col("cost", MONEY),
    _col("average_price", MONEY), _col("last_price", MONEY, nullable=True), _col("unrealised_pnl", MONEY),
    _col("opened_at", UtcDateTime), _col("entry_quantity", MONEY), _col("entry_value", MONEY),
    _col("exit_quantity", MONEY), _col("exit_value", MONEY), _col("trip_fees", MONEY), _col("trip_pnl", MONEY),
), PositionRow)
ORDERS = RowTable(_table(
    "portfolio_orders", _key("order_id"), _col("account"), _col("symbol"), _col("side"), _col("quantity", MONEY),
    _col("order_type"), _col("placed_at", UtcDateTime), _col("signal_ref"), _col("reason"), _col("status"),
    _col("closed_at", UtcDateTime, nullable=True), _col("fill_price", MONEY, nullable=True),
    _col("filled_quantity", MONEY, nullable=True), _col("fee", MONEY, nullable=True),
    _col("close_reason", nullable=True),
), OrderRow)
FILLS = RowTable(_table(
    "portfolio_fills", _key("position", sa.BigInteger), _col("account"), _col("order_id"), _col("symbol"),
    _col("side"), _col("price", MONEY), _col("quantity", MONEY), _col("fee", MONEY), _col("realised_pnl", MONEY),
    _col("filled_at", UtcDateTime),
), FillRow)
TRADES = RowTable(_table(
    "portfolio_trades", _key("account"), _key("seq", sa.Integer), _col("symbol"), _col("entry_time", UtcDateTime),
    _col("exit_time", UtcDateTime), _col("entry_price", MONEY), _col("exit_price", MONEY), _col("quantity", MONEY),
    _col("fees", MONEY), _col("pnl", MONEY),
), TradeRow)
EQUITY = RowTable(_table("portfolio_equity", _key("account"), _key("time", UtcDateTime), _col("equity", MONEY)),
                  EquityRow)
DAILY_PNL = RowTable(_table("portfolio_daily_pnl", _key("account"), _key("day", sa.Date), _col("pnl", MONEY)),
                     DailyPnlRow)


class PortfolioFold(Fold):
    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self.markets: dict[UUID, MarketRow] = {}
        self.prices: dict[str, PriceRow] = {}
        self.accounts: dict[UUID, AccountRow] = {}
        self.positions: dict[str, dict[str, PositionRow]] = {}  # account -> symbol -> row
        self.orders: dict[UUID, OrderRow] = {}  # open orders only

    def handlers_by_type(self) -> dict[type, Handler]:
        return {
            Market.Listed: self.listed, Market.CandleClosed: self.candle_closed,
            Account.Opened: self.opened, Account.OrderPlaced: self.order_placed,
            Account.OrderFilled: self.order_filled, Account.OrderCancelled: self.order_cancelled,
            Account.TradingHalted: self.halted, Account.TradingResumed: self.resumed,
        }

    @classmethod
    def restore(cls, rows: RowSource[Any], sink: Sink) -> PortfolioFold:
        fold = cls(sink)
        fold.markets = {m.market_id: m for m in rows(MARKETS)}
        fold.prices = {p.symbol: p for p in rows(PRICES)}
        fold.accounts = {a.account_id: a for a in rows(ACCOUNTS)}
        for position in rows(POSITIONS):
            fold.positions.setdefault(position.account, {})[position.symbol] = position
        fold.orders = {o.order_id: o for o in rows(ORDERS) if o.status == "open"}
        return fold

    # -- markets ------------------------------------------------------------

    def listed(self, e: Market.Listed, _position: int) -> None:
        row = self.markets[e.originator_id] = MarketRow(market_id=e.originator_id, symbol=e.symbol,
                                                        timeframe=e.timeframe)
        self.sink.put(MARKETS, row)

    def candle_closed(self, e: Market.CandleClosed, _position: int) -> None:
        symbol = self.markets[e.originator_id].symbol
        self.prices[symbol] = price = PriceRow(symbol=symbol, price=e.close, at=e.timestamp)
        self.sink.put(PRICES, price)
        for account in self.accounts.values():
            position = self.positions.get(account.account, {}).get(symbol)
            if position is not None:
                position.last_price = e.close
                self.revalue(position)
            self.mark(account, e.timestamp, e.open_time.date())

    # -- account ------------------------------------------------------------

    def opened(self, e: Account.Opened, _position: int) -> None:
        account = AccountRow(
            account=e.name, account_id=e.originator_id, quote_currency=e.quote_currency,
            initial_balance=e.initial_balance, cash=ZERO, realised_pnl=ZERO, fees=ZERO,
            equity=e.initial_balance, halted=False, halted_rule=None, halted_reason=None, opened_at=e.timestamp,
            mark_time=None, mark_day=None, day_open_equity=e.initial_balance, trades_closed=0,
        )
        self.post(account, e.journal)
        self.accounts[e.originator_id] = account
        self.sink.put(ACCOUNTS, account)

    def order_placed(self, e: Account.OrderPlaced, _position: int) -> None:
        order = self.orders[e.order_id] = OrderRow(
            order_id=e.order_id, account=self.accounts[e.originator_id].account, symbol=e.symbol, side=e.side,
            quantity=e.quantity, order_type=e.order_type, placed_at=e.timestamp, signal_ref=e.signal_ref,
            reason=e.reason, status="open",
        )
        self.sink.put(ORDERS, order)

    def order_cancelled(self, e: Account.OrderCancelled, _position: int) -> None:
        order = self.orders.pop(e.order_id)
        order.status, order.closed_at, order.close_reason = "cancelled", e.timestamp, e.reason
        self.sink.put(ORDERS, order)

    def order_filled(self, e: Account.OrderFilled, position: int) -> None:
        account = self.accounts[e.originator_id]
        order = self.orders.pop(e.order_id)
        order.status, order.closed_at = "filled", e.timestamp
        order.fill_price, order.filled_quantity, order.fee = e.price, e.quantity, e.fee
        self.sink.put(ORDERS, order)
        self.sink.put(FILLS, FillRow(
            position=position, account=account.account, order_id=e.order_id, symbol=e.symbol, side=e.side,
            price=e.price, quantity=e.quantity, fee=e.fee, realised_pnl=e.realised_pnl, filled_at=e.timestamp,
        ))
        self.post(account, e.journal)
        self.move_position(account, e)
        self.mark(account)

    def halted(self, e: Account.TradingHalted, _position: int) -> None:
        account = self.accounts[e.originator_id]
        account.halted, account.halted_rule, account.halted_reason = True, e.rule, e.reason
        self.sink.put(ACCOUNTS, account)

    def resumed(self, e: Account.TradingResumed, _position: int) -> None:
        account = self.accounts[e.originator_id]
        account.halted, account.halted_rule, account.halted_reason = False, None, None
        self.sink.put(ACCOUNTS, account)

    # -- ledger and valuation -------------------------------------------------

    def post(self, account: AccountRow, journal: tuple[JournalLine, ...]) -> None:
        cash = cash_account(account.quote_currency)
        for line in journal:
            if line.account == cash:
                account.cash += line.amount
            elif line.account == FEES:
                account.fees += line.amount
            elif line.account == TRADING_INCOME:
                account.realised_pnl -= line.amount  # income is a credit: negative is a gain

    def move_position(self, account: AccountRow, e: Account.OrderFilled) -> None:
        held = self.positions.setdefault(account.account, {})
        position = held.get(e.symbol)
        if position is None:
            position = held[e.symbol] = self.new_position(account.account, e)
        position.cost += sum((line.amount for line in e.journal if line.account == position_account(e.symbol)),
                             ZERO)
        position.trip_fees += e.fee
        if e.side is Side.BUY:
            position.quantity += e.quantity
            position.entry_quantity += e.quantity
            position.entry_value += e.price * e.quantity
        else:
            position.quantity -= e.quantity
            position.exit_quantity += e.quantity
            position.exit_value += e.price * e.quantity
            position.trip_pnl += e.realised_pnl
        if position.quantity:
            self.revalue(position)
        else:
            del held[e.symbol]
            self.sink.delete(POSITIONS, position)
            self.close_trip(account, position, e.timestamp)

    def new_position(self, account: str, e: Account.OrderFilled) -> PositionRow:
        return PositionRow(
            account=account, symbol=e.symbol, quantity=ZERO, cost=ZERO, average_price=ZERO,
            last_price=self.prices[e.symbol].price if e.symbol in self.prices else None, unrealised_pnl=ZERO,
            opened_at=e.timestamp, entry_quantity=ZERO, entry_value=ZERO, exit_quantity=ZERO, exit_value=ZERO,
            trip_fees=ZERO, trip_pnl=ZERO,
        )

    def revalue(self, position: PositionRow) -> None:
        position.average_price = position.cost / position.quantity
        position.unrealised_pnl = position.value - position.cost
        self.sink.put(POSITIONS, position)

    def close_trip(self, account: AccountRow, position: PositionRow, at: datetime) -> None:
        account.trades_closed += 1
        self.sink.put(TRADES, TradeRow(
            account=account.account, seq=account.trades_closed, symbol=position.symbol,
            entry_time=position.opened_at, exit_time=at,
            entry_price=position.entry_value / position.entry_quantity,
            exit_price=position.exit_value / position.exit_quantity,
            quantity=position.entry_quantity, fees=position.trip_fees, pnl=position.trip_pnl - position.trip_fees,
        ))

    def mark(self, account: AccountRow, at: datetime | None = None, day: date | None = None) -> None:
        """Revalue the account; at a candle (`at`, `day`), or once one was seen, also its curve point and day."""
        held = self.positions.get(account.account)
        equity = account.cash + sum((p.value for p in held.values()), ZERO) if held else account.cash
        if day is not None and day != account.mark_day:
            if account.mark_day is not None:
                account.day_open_equity = account.equity  # the previous day's closing equity
            account.mark_day = day
        if at is not None:
            account.mark_time = at
        account.equity = equity
        self.sink.put(ACCOUNTS, account)
        if account.mark_time is not None and account.mark_day is not None:
            self.sink.put(EQUITY, EquityRow(account=account.account, time=account.mark_time, equity=equity))
            self.sink.put(DAILY_PNL, DailyPnlRow(account=account.account, day=account.mark_day,
                                                 pnl=equity - account.day_open_equity))


PORTFOLIO = Projection("portfolio", (MARKETS, PRICES, ACCOUNTS, POSITIONS, ORDERS, FILLS, TRADES, EQUITY, DAILY_PNL),
                       PortfolioFold)


class PortfolioView(msgspec.Struct, kw_only=True):
    """One account's portfolio as the CLI and API show it."""

    account: AccountRow
    positions: list[PositionRow]
    open_orders: list[OrderRow]
    trades: list[TradeRow]
    daily_pnl: list[DailyPnlRow]


def portfolio_view(rows: RowSource[Any], account: str) -> PortfolioView | None:
    found = [a for a in rows(ACCOUNTS) if a.account == account]
    if not found:
        return None
    return PortfolioView(
        account=found[0],
        positions=[p for p in rows(POSITIONS) if p.account == account],
        open_orders=[o for o in rows(ORDERS) if o.account == account and o.status == "open"],
        trades=[t for t in rows(TRADES) if t.account == account],
        daily_pnl=[d for d in rows(DAILY_PNL) if d.account == account],
    )


def reconcile(rows: RowSource[Any]) -> RowMismatch | None:
    """The auditor's identities, per account; the first account row that breaks one.

    cash   = initial balance + realised PnL - fees - cost of the open positions
    equity = cash + the value of every open position (last price, or cost before any candle)
    """
    positions: dict[str, list[PositionRow]] = {}
    for position in rows(POSITIONS):
        positions.setdefault(position.account, []).append(position)
    for account in rows(ACCOUNTS):
        held = positions.get(account.account, [])
        cash = account.initial_balance + account.realised_pnl - account.fees - sum((p.cost for p in held), ZERO)
        equity = account.cash + sum((p.value for p in held), ZERO)
        if cash != account.cash:
            return RowMismatch(table=ACCOUNTS.name, key=account.account,
                               message=f"cash is {account.cash}, but initial balance + realised PnL - fees - "
                                       f"open cost is {cash}")
        if equity != account.equity:
            return RowMismatch(table=ACCOUNTS.name, key=account.account,
                               message=f"equity is {account.equity}, but cash + positions at last price is {equity}")
    return None
