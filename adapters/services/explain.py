"""`explain`: the whole trail of one order, read from the facts the log recorded.

From an order id, or the log position of the order, its fill or its signal:
the candle and the signal the order was placed on (`OrderPlaced.basis` names
the signal by market stream and version; its candle is the event before it in
that stream), every risk check with its measured value and limit, the sizing
inputs and the arithmetic of the quantity, the fill (`OrderFilled.basis`: the
open it filled at, slippage, fee rate) with its journal lines, and the round
trip the fill belongs to (entry to flat again: gross PnL, fees, net PnL).
Orders recorded before 0.3 carry no basis: their signal is found by the
candle time in `signal_ref`, and checks and sizing are empty.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from tradeledger.adapters.services.books import Posting, posting
from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.account import Account
from tradeledger.domain.broker import PRICE_QUANTUM
from tradeledger.domain.market import Market
from tradeledger.domain.marketrules import OrderRules
from tradeledger.domain.orders import FillBasis, RiskCheck, SizingInputs
from tradeledger.domain.values import MemberPrediction, Side
from tradeledger.projections.fold import Recorded

ZERO = Decimal(0)
TRAIL = (Account.OrderPlaced, Account.OrderFilled, Account.OrderCancelled, Market.CandleClosed,
         Market.SignalGenerated)


class NotExplained(LookupError):
    """No order answers to the id or position given (the message says why)."""


class CandleFacts(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    symbol: str
    timeframe: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quality_flags: tuple[str, ...]


class SignalFacts(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    model_name: str
    model_version: str
    prediction: str
    confidence: float
    is_actionable: bool
    data_quality: float
    members: tuple[MemberPrediction, ...]
    features: dict[str, float]


class OrderFacts(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    order_id: UUID
    symbol: str
    side: Side
    quantity: Decimal
    placed_at: datetime
    reason: str
    signal_ref: str
    cancelled: str | None  # the reason, when the order was cancelled instead of filled


class SizingFacts(msgspec.Struct, frozen=True, kw_only=True):
    """An entry's quantity: `inputs` and the intermediate values of its formula; an exit has no inputs."""

    inputs: SizingInputs | None
    budget: Decimal | None
    unit_cost: Decimal | None
    quantity: Decimal
    formula: list[str]


class FillFacts(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    filled_at: datetime
    candle_position: int | None  # the candle whose open the order filled at
    basis: FillBasis | None
    price: Decimal
    quantity: Decimal
    fee: Decimal
    gross_pnl: Decimal  # the fill's realised result before fees (0 for a buy)
    formula: list[str]
    journal: list[Posting]


class TripFill(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    gross_pnl: Decimal  # realised before fees: a sell's value less the cost of what it sold; 0 for a buy


class RoundTrip(msgspec.Struct, frozen=True, kw_only=True):
    closed: bool
    entry_at: datetime
    exit_at: datetime | None
    fills: list[TripFill]
    gross_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal  # gross_pnl - fees


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    order: OrderFacts
    candle: CandleFacts | None
    signal: SignalFacts | None
    checks: list[RiskCheck]
    sizing: SizingFacts
    fill: FillFacts | None
    round_trip: RoundTrip | None


def explain(log: EventLogPort, *, order_id: UUID | None = None, position: int | None = None) -> Explanation:
    """NotExplained when no order answers to the id or position."""
    trail = list(scan(log, types=TRAIL))
    placed = find_order(trail, order_id, position)
    order: Account.OrderPlaced = placed.event
    signal = signal_of(trail, placed)
    candle = last_candle(trail, signal.stream, signal.position) if signal else None
    fills = [r for r in trail if r.stream == placed.stream and r.type is Account.OrderFilled
             and r.event.symbol == order.symbol]
    fill = next((r for r in fills if r.event.order_id == order.order_id), None)
    cancelled = next((r.event.reason for r in trail if r.type is Account.OrderCancelled
                      and r.event.order_id == order.order_id), None)
    fill_candle = last_candle(trail, signal.stream, fill.position) if fill and signal else None
    basis = order.basis
    return Explanation(
        order=OrderFacts(position=placed.position, order_id=order.order_id, symbol=order.symbol, side=order.side,
                         quantity=order.quantity, placed_at=order.timestamp, reason=order.reason,
                         signal_ref=order.signal_ref, cancelled=cancelled),
        candle=candle_facts(candle, signal) if candle and signal else None,
        signal=signal_facts(signal) if signal else None,
        checks=list(basis.checks) if basis else [],
        sizing=sizing_facts(order),
        fill=fill_facts(fill, fill_candle) if fill else None,
        round_trip=round_trip(fills, fill) if fill else None,
    )


def find_order(trail: list[Recorded], order_id: UUID | None, position: int | None) -> Recorded:
    placed = [r for r in trail if r.type is Account.OrderPlaced]
    if order_id is not None:
        found = next((r for r in placed if r.event.order_id == order_id), None)
        if found is None:
            raise NotExplained(f"no order {order_id} in the log")
        return found
    at = next((r for r in trail if r.position == position), None)
    if at is None:
        raise NotExplained(f"position {position} holds no order, fill, candle or signal")
    if at.type in (Account.OrderPlaced, Account.OrderFilled, Account.OrderCancelled):
        return find_order(trail, at.event.order_id, None)
    if at.type is Market.CandleClosed:  # its signal follows it in the same stream
        at = next((r for r in trail if r.stream == at.stream and r.version == (at.version or 0) + 1), at)
    found = next((r for r in placed if signal_of(trail, r) is at), None)
    if found is None:
        raise NotExplained(f"the {at.type.__name__} at position {position} placed no order")
    return found


def signal_of(trail: list[Recorded], placed: Recorded) -> Recorded | None:
    basis = placed.event.basis
    if basis is not None:
        return next((r for r in trail if r.stream == basis.signal_stream and r.version == basis.signal_version),
                    None)
    # Before 0.3: the reference is "SYMBOL TIMEFRAME CANDLE-OPEN-TIME".
    symbol, timeframe, candle_time = placed.event.signal_ref.rsplit(" ", 2)
    return next((r for r in trail if r.type is Market.SignalGenerated and r.position < placed.position
                 and (r.event.symbol, r.event.timeframe, r.event.candle_time.isoformat())
                 == (symbol, timeframe, candle_time)), None)


def last_candle(trail: list[Recorded], stream: UUID | None, before: int) -> Recorded | None:
    """The market's last candle before a position: a signal's own, or the one whose open a fill took."""
    return next((r for r in reversed(trail) if r.position < before and r.stream == stream
                 and r.type is Market.CandleClosed), None)


def candle_facts(candle: Recorded, signal: Recorded) -> CandleFacts:
    c, s = candle.event, signal.event
    return CandleFacts(position=candle.position, symbol=s.symbol, timeframe=s.timeframe, open_time=c.open_time,
                       open=c.open, high=c.high, low=c.low, close=c.close, volume=c.volume,
                       quality_flags=c.quality_flags)


def signal_facts(signal: Recorded) -> SignalFacts:
    s = signal.event
    return SignalFacts(position=signal.position, model_name=s.model_name, model_version=s.model_version,
                       prediction=s.prediction.value, confidence=s.confidence, is_actionable=s.is_actionable,
                       data_quality=s.data_quality, members=s.individual_predictions,
                       features=dict(s.feature_values))


def sizing_facts(order: Account.OrderPlaced) -> SizingFacts:
    inputs = order.basis.sizing if order.basis else None
    if inputs is None:
        held = "the open position" if order.side is Side.SELL else "as recorded (placed before 0.3: no inputs)"
        return SizingFacts(inputs=None, budget=None, unit_cost=None, quantity=order.quantity,
                           formula=[f"quantity = {held} = {order.quantity}"])
    budget, unit_cost, quantity = inputs.budget, inputs.unit_cost, inputs.quantity()
    stake = f"{inputs.equity} x {inputs.position_size}" if inputs.stake_amount is None else f"{inputs.stake_amount}"
    formula = [
        f"budget = min({'equity x position_size' if inputs.stake_amount is None else 'stake_amount'}, cash) = "
        f"min({stake}, {inputs.cash}) = {budget}",
        f"unit cost = price x (1 + fee_rate) x (1 + slippage_bps / 10000) = {inputs.price} x "
        f"(1 + {inputs.fee_rate}) x (1 + {inputs.slippage_bps} / 10000) = {unit_cost}",
        f"quantity = budget / unit cost, rounded down to 1e-8 = {budget / unit_cost} -> {quantity}",
    ]
    if inputs.amount_step is not None:
        stepped = OrderRules(amount_step=inputs.amount_step).amount(quantity)
        formula.append(f"rounded down to the market's amount step {inputs.amount_step}: {quantity} -> {stepped}")
        quantity = stepped
    return SizingFacts(inputs=inputs, budget=budget, unit_cost=unit_cost, quantity=quantity, formula=formula)


def fill_facts(fill: Recorded, candle: Recorded | None) -> FillFacts:
    f = fill.event
    basis: FillBasis | None = f.basis
    formula = []
    if basis is not None:
        formula = [*price_formula(f, basis),
                   f"fee = price x quantity x fee_rate = {f.price} x {f.quantity} x {basis.fee_rate} = "
                   f"{f.price * f.quantity * basis.fee_rate} -> {f.fee} (rounded to 1e-12)"]
    return FillFacts(position=fill.position, filled_at=f.filled_at,
                     candle_position=candle.position if candle else None, basis=basis, price=f.price,
                     quantity=f.quantity, fee=f.fee, gross_pnl=f.realised_pnl, formula=formula,
                     journal=[posting(line) for line in f.journal])


def price_formula(f: Any, basis: FillBasis) -> list[str]:
    if basis.limit_price is not None:  # a limit or stop order (docs/exits.md)
        return [f"price = the {basis.order_type.value} level {basis.limit_price}, or the open {basis.open} when the "
                f"candle opened beyond it = {f.price} (no slippage)"]
    sign = "+" if f.side is Side.BUY else "-"
    unrounded = basis.open * (1 + (1 if f.side is Side.BUY else -1) * basis.slippage_bps / 10_000)
    rounded = unrounded.quantize(PRICE_QUANTUM)
    return [f"price = open x (1 {sign} slippage_bps / 10000) = {basis.open} x (1 {sign} "
            f"{basis.slippage_bps} / 10000) = {unrounded} -> {rounded} (rounded to 1e-10)",
            *([f"rounded to the market's price step {basis.price_step} against the trader: {rounded} -> "
               f"{f.price}"] if basis.price_step is not None else [])]


def round_trip(fills: list[Recorded], fill: Recorded) -> RoundTrip:
    """The trip (from flat to flat again) of the account's fills in one symbol that `fill` belongs to."""
    trip: list[Any] = []
    held = ZERO
    for recorded in fills:
        event = recorded.event
        if not held:
            trip = []
        trip.append(recorded)
        held += event.quantity if event.side is Side.BUY else -event.quantity
        if not held and fill in trip:
            break
    closed = not held
    gross = sum((r.event.realised_pnl for r in trip), ZERO)
    fees = sum((r.event.fee for r in trip), ZERO)
    return RoundTrip(closed=closed, entry_at=trip[0].event.filled_at,
                     exit_at=trip[-1].event.filled_at if closed else None,
                     fills=[TripFill(position=r.position, side=r.event.side, quantity=r.event.quantity,
                                     price=r.event.price, fee=r.event.fee, gross_pnl=r.event.realised_pnl)
                            for r in trip],
                     gross_pnl=gross, fees=fees, net_pnl=gross - fees)
