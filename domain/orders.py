"""Orders and positions of the account, and the facts an order is placed on.

`OrderBasis` is what `OrderPlaced` records (and `FillBasis` what `OrderFilled` does) so an auditor reads the decision
instead of re-deriving it: the signal (by its market stream and version, which
a deterministic re-run reproduces; the log position follows from the store),
the sizing inputs of an entry, and every risk check evaluated at that close
with its measured value and limit.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from uuid import UUID

import msgspec

from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.values import Candle, OrderType, Side

QUANTITY_QUANTUM = Decimal("1e-8")
PRICE_QUANTUM = Decimal("1e-10")  # fill prices and limit levels


class Order(msgspec.Struct, kw_only=True):
    order_id: UUID
    symbol: str
    side: Side
    quantity: Decimal
    placed_at: datetime
    status: str = "open"
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None  # a limit order's: it fills only at this price or better
    exit_reason: str | None = None  # a sell's (domain.exits)


class Position(msgspec.Struct, kw_only=True):
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)

    @property
    def average_price(self) -> Decimal:
        return self.cost / self.quantity if self.quantity else Decimal(0)


class RiskCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One rule evaluated at the close the order was placed on: passed when `value` < `limit`."""

    rule: str
    value: Decimal
    limit: Decimal
    passed: bool


class SizingInputs(msgspec.Struct, frozen=True, kw_only=True):
    """What an entry's quantity was computed from (`domain.trader.Sizing`):

    budget = min(equity * position_size, cash), or min(stake_amount, cash) when a stake is set
    unit_cost = price * (1 + fee_rate) * (1 + slippage_bps / 10000)
    quantity = budget / unit_cost, rounded down to 1e-8 (then down to amount_step, when the market has one)
    """

    equity: Decimal
    cash: Decimal
    position_size: Decimal
    fee_rate: Decimal
    slippage_bps: Decimal
    price: Decimal  # the reference price: the close of the signal's candle
    amount_step: Decimal | None = None  # the market's (domain.marketrules): the quantity is rounded down to it
    # trading.stake_amount (added later: None, as every entry recorded before it, sizes by position_size).
    stake_amount: Decimal | None = None

    @property
    def budget(self) -> Decimal:
        stake = self.equity * self.position_size if self.stake_amount is None else self.stake_amount
        return min(stake, self.cash)

    @property
    def unit_cost(self) -> Decimal:
        return self.price * (1 + self.fee_rate) * (1 + self.slippage_bps / 10_000)

    def quantity(self) -> Decimal:
        """Before the market's amount step (the trader applies that next, and refuses an order it rounds to 0)."""
        return (self.budget / self.unit_cost).quantize(QUANTITY_QUANTUM, rounding=ROUND_DOWN)


class OrderBasis(msgspec.Struct, frozen=True, kw_only=True):
    """The facts an order was placed on. `sizing` is None for an exit, which sells the open position."""

    signal_stream: UUID
    signal_version: int
    checks: tuple[RiskCheck, ...] = ()
    sizing: SizingInputs | None = None


class FillBasis(msgspec.Struct, frozen=True, kw_only=True):
    """How the paper broker priced a fill (`domain.broker`):

    market: price = open * (1 + slippage_bps / 10000) for a buy, (1 - ...) for a sell, rounded to 1e-10
            (then to price_step, when the market has one: a buy up, a sell down)
    limit, stop: price = `touch_price`: the limit (stop) level, or the open when the open is already beyond it;
            no slippage (the level is on the price step already, the open is a traded price)
    quantity = the order's, or for a buy the cash no longer covers, the most it affords
    fee = price * quantity * fee_rate, rounded to 1e-12
    """

    open: Decimal  # the open of the candle the order filled at
    slippage_bps: Decimal
    fee_rate: Decimal
    price_step: Decimal | None = None
    order_type: OrderType = OrderType.MARKET  # added with limit and stop orders; earlier fills were market fills
    limit_price: Decimal | None = None  # a limit or stop order's level


class OrderPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """`trading.entry_order` / `trading.exit_order` ("market" or "limit"), `trading.limit_offset_bps` and
    `trading.order_timeout_candles`: how entries and signal exits are placed (docs/exits.md)."""

    entry_order: OrderType = OrderType.MARKET
    exit_order: OrderType = OrderType.MARKET
    limit_offset_bps: Decimal = Decimal(0)
    timeout_candles: int = 1

    def limit_for(self, side: Side) -> bool:
        return (self.entry_order if side is Side.BUY else self.exit_order) is OrderType.LIMIT

    def level(self, side: Side, reference: Decimal) -> Decimal:
        """A buy limit below the reference close by the offset, a sell limit above it, rounded to 1e-10."""
        direction = -1 if side is Side.BUY else 1
        return (reference * (1 + direction * self.limit_offset_bps / 10_000)).quantize(PRICE_QUANTUM)


def check_order(side: Side, order_type: OrderType, limit_price: Decimal | None, exit_reason: str | None) -> None:
    """A limit or stop order has a level > 0 and a market order none; only a sell has an exit reason."""
    if (order_type is OrderType.MARKET) != (limit_price is None) or (limit_price is not None and limit_price <= 0):
        raise InvalidValue("limit_price", limit_price, f"does not fit a {order_type.value} order")
    if side is Side.BUY and exit_reason is not None:
        raise InvalidValue("exit_reason", exit_reason, "only a sell exits a position")


def touch_price(order_type: OrderType, side: Side, level: Decimal, candle: Candle) -> Decimal | None:
    """The price a limit or stop order at `level` fills at in this candle, or None when the candle never
    traded there. A buy limit fills when the low reaches it, a sell limit when the high does, a sell stop
    when the low does; each at its level, or at the open when the candle opened beyond the level."""
    if order_type is OrderType.LIMIT and side is Side.BUY:
        return min(candle.open, level) if candle.low <= level else None
    if order_type is OrderType.LIMIT:
        return max(candle.open, level) if candle.high >= level else None
    if order_type is OrderType.STOP and side is Side.SELL:
        return min(candle.open, level) if candle.low <= level else None
    raise ValueError(f"no touch price for a {side.value} {order_type.value} order")
