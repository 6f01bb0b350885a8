"""The alerts read model: one alert per log position that deserves a message to the trader.

Which events alert (at most one alert per position, so the position is the alert's key):
- `OrderFilled` that opens a position from flat: trade opened;
- `OrderFilled` that brings a position back to flat: trade closed, with the
  round trip's PnL net of both legs' fees;
- `OrderRejected`: once per cause. A rejection with the same rule as the
  account's last alerted one is not alerted again until trading is halted or
  resumed or an order is placed: a halted agent rejects every entry signal,
  and the halt alert has already said why;
- `TradingHalted` / `TradingResumed`: rule, who, why and the measured values;
- `AgentRun.Stopped`: clean or not, and why.

A round trip's numbers are the portfolio's own: this fold runs a
`PortfolioFold` on the account's events, whose rows go through
`PortfolioTap`, so a closed trade's PnL is exactly the portfolio's trade row.
Candles are left out: round trips depend on fills alone, and without candles
the inner fold (and the JSON of its working rows, kept in `alerts_state` so
this projection restores and rebuilds on its own) costs nothing on the
events that make up most of the log.

Not here: alerts that come from the clock or from other read models (agent
stale or recovered, projection stuck, the daily summary; see
`projections.alert_watch`), and delivery state per chat
(`projections.outbox`), which is not derivable from the log and so must
survive `rebuild alerts`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal
from uuid import UUID

import msgspec

from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.values import Side
from tradeledger.projections.fold import Fold, EventHandler, Projection
from tradeledger.projections.portfolio import PortfolioFold
from tradeledger.projections.portfolio_rows import (
    ACCOUNTS,
    ORDERS,
    POSITIONS,
    TRADES,
    AccountRow,
    PositionRow,
    TradeRow,
)
from tradeledger.projections.rows import RowSource, RowTable, Sink

AlertKind = Literal[
    "trade_opened", "trade_closed", "order_rejected", "trading_halted", "trading_resumed", "agent_stopped",
    "daily_summary", "agent_stale", "agent_recovered", "projection_stuck", "feed_down", "feed_recovered",
]
SHOWN_PLACES = Decimal("1e-8")  # amounts in messages: satoshi precision, trailing zeros dropped
HUNDRED = Decimal(100)

# The portfolio tables its fold restores from that change on account events (markets and prices
# change on candles only); the rest of what it writes is history no alert needs.
WORKING_TABLES = frozenset(t.name for t in (ACCOUNTS, POSITIONS, ORDERS))
# The inner fold's events: everything it needs for accounts, positions and round trips.
ACCOUNT_EVENTS = (Account.Opened, Account.OrderPlaced, Account.OrderFilled, Account.OrderCancelled,
                  Account.TradingHalted, Account.TradingResumed)
REJECTED_SCOPE = "alerts:rejected"  # the rule of the last alerted rejection per account


class AlertRow(msgspec.Struct, kw_only=True):
    position: int
    kind: str
    at: datetime
    text: str


class StateRow(msgspec.Struct, kw_only=True):
    scope: str
    key: str
    value: str  # msgspec JSON of the state's struct


ALERTS = RowTable.of(AlertRow, "alerts", primary_key=["position"])
ALERT_STATE = RowTable.of(StateRow, "alerts_state", primary_key=["scope", "key"])


def shown(amount: Decimal) -> str:
    value = amount.quantize(SHOWN_PLACES, rounding=ROUND_HALF_EVEN).normalize()
    return f"{value:f}" if value else "0"


def signed(amount: Decimal) -> str:
    return ("+" if amount > 0 else "") + shown(amount)


def percent(part: Decimal, whole: Decimal) -> str:
    return f"{part / whole * HUNDRED:+.2f}%" if whole else "n/a"


def state_row(scope: str, key: object, value: object) -> StateRow:
    # str(): a table's name is SQLAlchemy's `quoted_name`, which msgspec does not encode.
    return StateRow(scope=str(scope), key=msgspec.json.encode(key).decode(), value=msgspec.json.encode(value).decode())


class PortfolioTap:
    """The inner portfolio fold's sink: keeps its working rows as state and shows every row to `observe`."""

    def __init__(self, sink: Sink, observe: Callable[[RowTable[Any], Any], None]) -> None:
        self.sink = sink
        self.observe = observe

    def put(self, table: RowTable[Any], row: Any) -> None:
        if table.name in WORKING_TABLES:
            if table is ORDERS and row.status != "open":
                self.delete(table, row)  # the portfolio restores open orders only
            else:
                self.sink.put(ALERT_STATE, state_row(table.name, table.key_of(row), row))
        self.observe(table, row)

    def delete(self, table: RowTable[Any], row: Any) -> None:
        if table.name in WORKING_TABLES:
            self.sink.delete(ALERT_STATE, state_row(table.name, table.key_of(row), None))


class AlertsFold(Fold):
    def __init__(self, sink: Sink, portfolio_rows: RowSource[Any] | None = None) -> None:
        tap = PortfolioTap(sink, self.observe)
        self.portfolio = PortfolioFold(tap) if portfolio_rows is None else PortfolioFold.restore(portfolio_rows, tap)
        self.rejected: dict[UUID, str] = {}
        # What the portfolio wrote while applying the current fill.
        self.position_row: PositionRow | None = None
        self.trade_row: TradeRow | None = None
        super().__init__(sink)

    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {
            **{event_type: self.through for event_type in ACCOUNT_EVENTS},
            Account.OrderPlaced: self.order_placed, Account.OrderFilled: self.order_filled,
            Account.OrderRejected: self.order_rejected, Account.TradingHalted: self.halted,
            Account.TradingResumed: self.resumed, AgentRun.Stopped: self.agent_stopped,
        }

    @classmethod
    def restore(cls, rows: RowSource[Any], sink: Sink) -> AlertsFold:
        state: dict[str, list[StateRow]] = {}
        for row in rows(ALERT_STATE):
            state.setdefault(row.scope, []).append(row)

        def working(table: RowTable[Any]) -> list[Any]:
            return [msgspec.json.decode(r.value, type=table.row) for r in state.get(table.name, [])]

        fold = cls(sink, working)
        fold.rejected = {msgspec.json.decode(r.key, type=UUID): msgspec.json.decode(r.value, type=str)
                         for r in state.get(REJECTED_SCOPE, [])}
        return fold

    # -- what the portfolio wrote -----------------------------------------------

    def observe(self, table: RowTable[Any], row: Any) -> None:
        if table is POSITIONS:
            self.position_row = row
        elif table is TRADES:
            self.trade_row = row

    def account(self, account_id: UUID) -> AccountRow:
        return self.portfolio.accounts[account_id]

    def alert(self, position: int, kind: AlertKind, at: datetime, text: str) -> None:
        self.sink.put(ALERTS, AlertRow(position=position, kind=kind, at=at, text=text))

    # -- events -------------------------------------------------------------------

    def through(self, e: Any, position: int) -> None:
        """Let the portfolio fold apply the event first: the alert reads what it wrote."""
        handler = self.portfolio.handlers.get(type(e))
        if handler is not None:
            handler(e, position)

    def order_placed(self, e: Account.OrderPlaced, position: int) -> None:
        self.through(e, position)
        self.unmute_rejections(e.originator_id)

    def order_filled(self, e: Account.OrderFilled, position: int) -> None:
        self.position_row = self.trade_row = None
        self.through(e, position)
        account = self.account(e.originator_id)
        if self.trade_row is not None:  # the fill closed a round trip
            t = self.trade_row
            self.alert(position, "trade_closed", e.timestamp,
                       f"{account.account}: closed {t.symbol}, {shown(t.quantity)} from {shown(t.entry_price)} "
                       f"to {shown(t.exit_price)}: net PnL {signed(t.pnl)} {account.quote_currency} "
                       f"({percent(t.pnl, t.entry_price * t.quantity)}) = gross {signed(t.pnl + t.fees)} "
                       f"- fees {shown(t.fees)}")
        elif e.side is Side.BUY and self.position_row is not None and self.position_row.quantity == e.quantity:
            # The position holds exactly this fill: it was flat before.
            self.alert(position, "trade_opened", e.timestamp,
                       f"{account.account}: opened {e.symbol}, bought {shown(e.quantity)} at {shown(e.price)} "
                       f"(fee {shown(e.fee)} {account.quote_currency})")

    def order_rejected(self, e: Account.OrderRejected, position: int) -> None:
        if self.rejected.get(e.originator_id) == e.rule:
            return
        self.rejected[e.originator_id] = e.rule
        self.sink.put(ALERT_STATE, state_row(REJECTED_SCOPE, e.originator_id, e.rule))
        self.alert(position, "order_rejected", e.timestamp,
                   f"{self.account(e.originator_id).account}: {e.side.value} {e.symbol} rejected by {e.rule}: "
                   f"{e.reason}")

    def halted(self, e: Account.TradingHalted, position: int) -> None:
        self.through(e, position)
        self.unmute_rejections(e.originator_id)
        measured = "".join(f"\n  {name} = {value}" for name, value in sorted(e.metrics.items()))
        self.alert(position, "trading_halted", e.timestamp,
                   f"{self.account(e.originator_id).account}: trading HALTED by rule {e.rule} ({e.by}): "
                   f"{e.reason}{measured}")

    def resumed(self, e: Account.TradingResumed, position: int) -> None:
        self.through(e, position)
        self.unmute_rejections(e.originator_id)
        self.alert(position, "trading_resumed", e.timestamp,
                   f"{self.account(e.originator_id).account}: trading resumed by {e.by}: {e.reason}")

    def unmute_rejections(self, account_id: UUID) -> None:
        if self.rejected.pop(account_id, None) is not None:
            self.sink.delete(ALERT_STATE, state_row(REJECTED_SCOPE, account_id, None))

    def agent_stopped(self, e: AgentRun.Stopped, position: int) -> None:
        how = "cleanly" if e.clean else "UNCLEANLY"
        self.alert(position, "agent_stopped", e.timestamp,
                   f"agent run {str(e.originator_id)[:8]} stopped {how}: {e.reason}")


ALERTS_PROJECTION = Projection("alerts", (ALERTS, ALERT_STATE), AlertsFold)
