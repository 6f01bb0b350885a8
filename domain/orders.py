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

from tradeledger.domain.values import Side

QUANTITY_QUANTUM = Decimal("1e-8")


class Order(msgspec.Struct, kw_only=True):
    order_id: UUID
    symbol: str
    side: Side
    quantity: Decimal
    placed_at: datetime
    status: str = "open"


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

    budget = min(equity * position_size, cash)
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

    @property
    def budget(self) -> Decimal:
        return min(self.equity * self.position_size, self.cash)

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

    price = open * (1 + slippage_bps / 10000) for a buy, (1 - ...) for a sell, rounded to 1e-10
            (then to price_step, when the market has one: a buy up, a sell down)
    quantity = the order's, or for a buy the cash no longer covers, the most it affords
    fee = price * quantity * fee_rate, rounded to 1e-12
    """

    open: Decimal  # the open of the candle the order filled at
    slippage_bps: Decimal
    fee_rate: Decimal
    price_step: Decimal | None = None
