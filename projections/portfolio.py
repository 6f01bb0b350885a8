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
  are both legs' fees; pnl is the realised PnL net of those fees; its exit reason is the closing sell's
  (a sell recorded before exit reasons: `signal`, or `max_drawdown_percent` for the drawdown rule's exit).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from tradeledger.domain.account import FEES, TRADING_INCOME, Account, cash_account, position_account
from tradeledger.domain.exits import recorded_reason
from tradeledger.domain.market import Market
from tradeledger.domain.values import JournalLine, Side
from tradeledger.projections.fold import Fold, EventHandler, Projection
from tradeledger.projections.portfolio_rows import (
    ACCOUNTS,
    DAILY_PNL,
    EQUITY,
    FILLS,
    MARKETS,
    ORDERS,
    POSITIONS,
    PRICES,
    TRADES,
    AccountRow,
    DailyPnlRow,
    EquityRow,
    FillRow,
    MarketRow,
    OrderRow,
    PositionRow,
    PriceRow,
    TradeRow,
)
from tradeledger.projections.rows import RowSource, Sink

ZERO = Decimal(0)


class PortfolioFold(Fold):
    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self.markets: dict[UUID, MarketRow] = {}
        self.prices: dict[str, PriceRow] = {}
        self.accounts: dict[UUID, AccountRow] = {}
        self.positions: dict[str, dict[str, PositionRow]] = {}  # account -> symbol -> row
        self.orders: dict[UUID, OrderRow] = {}  # open orders only

    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {
            Market.Listed: self.listed, Market.CandleClosed: self.candle_closed,
            Account.Opened: self.opened, Account.OrderPlaced: self.order_placed,
            Account.OrderFilled: self.order_filled, Account.OrderCancelled: self.order_cancelled,
            Account.TradingHalted: self.halted, Account.TradingResumed: self.resumed,
            Account.EntriesSwitched: self.entries_switched,
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
            held = self.positions.get(account.account)
            position = None if held is None else held.get(symbol)
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
            reason=e.reason, status="open", limit_price=e.limit_price, exit_reason=e.exit_reason,
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
        self.move_position(account, e, recorded_reason(order.exit_reason, order.reason))
        self.mark(account)

    def halted(self, e: Account.TradingHalted, _position: int) -> None:
        account = self.accounts[e.originator_id]
        account.halted, account.halted_rule, account.halted_reason = True, e.rule, e.reason
        self.sink.put(ACCOUNTS, account)

    def resumed(self, e: Account.TradingResumed, _position: int) -> None:
        account = self.accounts[e.originator_id]
        account.halted, account.halted_rule, account.halted_reason = False, None, None
        self.sink.put(ACCOUNTS, account)

    def entries_switched(self, e: Account.EntriesSwitched, _position: int) -> None:
        account = self.accounts[e.originator_id]
        account.entries_stopped = e.stopped
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

    def move_position(self, account: AccountRow, e: Account.OrderFilled, exit_reason: str) -> None:
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
            self.close_trip(account, position, e.timestamp, exit_reason)

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

    def close_trip(self, account: AccountRow, position: PositionRow, at: datetime, exit_reason: str) -> None:
        account.trades_closed += 1
        self.sink.put(TRADES, TradeRow(
            account=account.account, seq=account.trades_closed, symbol=position.symbol,
            entry_time=position.opened_at, exit_time=at,
            entry_price=position.entry_value / position.entry_quantity,
            exit_price=position.exit_value / position.exit_quantity,
            quantity=position.entry_quantity, fees=position.trip_fees, pnl=position.trip_pnl - position.trip_fees,
            exit_reason=exit_reason,
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
