"""The trading decision for one candle: the same code in backtest, live and replay.

A tick has two halves:
- `observe(candle)` runs the features and the predictor. It depends only on
  the candles seen so far, so it runs exactly once per candle.
- `trade(candle, signal, market, account)` records the candle and signal,
  fills the orders placed on the previous candle at this candle's open,
  applies the risk rules and places new orders. It only touches the
  aggregates and the trader's account-side state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

import msgspec

from tradeledger.domain.account import Account
from tradeledger.domain.features import FeatureEngine, Features
from tradeledger.domain.market import Market
from tradeledger.domain.marketrules import RulesFor, no_rules
from tradeledger.domain.orders import FillBasis, Order, OrderBasis, SizingInputs
from tradeledger.domain.predictors import Predictor
from tradeledger.domain.risk import DRAWDOWN, RISK, RiskBreach, RiskLimits, RiskMonitor
from tradeledger.domain.sessions import Sessions
from tradeledger.domain.values import Candle, Decision, Prediction, Side, timeframe_delta

MIN_DATA_QUALITY = 0.9


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    price: Decimal
    quantity: Decimal
    fee: Decimal
    basis: FillBasis | None = None


class Broker(Protocol):
    def fill(self, order: Order, candle: Candle, cash: Decimal) -> Fill | None:
        """Fill a market order at this candle's open, or None when it cannot be afforded."""
        ...


class Sizing(msgspec.Struct, frozen=True, kw_only=True):
    position_size: Decimal
    fee_rate: Decimal
    slippage_bps: Decimal

    def inputs(self, equity: Decimal, cash: Decimal, price: Decimal, amount_step: Decimal | None = None
               ) -> SizingInputs:
        return SizingInputs(equity=equity, cash=cash, position_size=self.position_size, fee_rate=self.fee_rate,
                            slippage_bps=self.slippage_bps, price=price, amount_step=amount_step)


class Signal(msgspec.Struct, frozen=True, kw_only=True):
    decision: Decision
    features: Features
    is_actionable: bool


class MarketModel:
    """Features and predictor of one market, advanced once per candle."""

    def __init__(self, engine: FeatureEngine, predictor: Predictor) -> None:
        self.engine = engine
        self.predictor = predictor

    def observe(self, candle: Candle) -> Signal:
        features = self.engine.update(candle)
        decision = self.predictor.on_candle(features)
        actionable = (
            decision.prediction is not Prediction.HOLD
            and features.ready
            and features.data_quality >= MIN_DATA_QUALITY
        )
        return Signal(decision=decision, features=features, is_actionable=actionable)


class Trader:
    def __init__(
        self,
        *,
        model_factory: Callable[[], MarketModel],
        limits: RiskLimits,
        sizing: Sizing,
        broker: Broker,
        rules: RulesFor = no_rules,
    ) -> None:
        self.model_factory = model_factory
        self.rules = rules  # each market's trading rules: steps and minimums (domain.marketrules)
        self.models: dict[str, MarketModel] = {}
        self.sizing = sizing
        self.broker = broker
        self.risk = RiskMonitor(limits)
        self.last_prices: dict[str, Decimal] = {}
        self.entry_fees: dict[str, Decimal] = {}
        self.halted_rule: str | None = None  # the halt in force at the end of the last tick
        self.signal: tuple[UUID, int] | None = None  # (market stream, version) of the tick's signal

    def observe(self, candle: Candle) -> Signal:
        model = self.models.get(candle.symbol)
        if model is None:
            model = self.models[candle.symbol] = self.model_factory()
        return model.observe(candle)

    def trade(self, candle: Candle, signal: Signal, market: Market, account: Account) -> None:
        self.notice_control(account)
        sessions = self.models[candle.symbol].engine.sessions  # the engine's: flags and data_quality agree
        market.close_candle(candle, quality_flags=gap_flags(market, candle, sessions))
        market.generate_signal(
            signal.decision,
            is_actionable=signal.is_actionable,
            data_quality=signal.features.data_quality,
            features_used=signal.features.names,
            feature_values=signal.features.values,
        )
        self.signal = (market.id, market.version)
        self.fill_open_orders(candle, account)
        self.last_prices[candle.symbol] = candle.close
        self.apply_risk(candle, account)
        if signal.is_actionable:
            self.act(candle, signal.decision.prediction, account)

    # -- steps --------------------------------------------------------------

    def notice_control(self, account: Account) -> None:
        """A person may have halted or resumed trading (or both) since the last tick."""
        if account.halted_by_rule == self.halted_rule:
            return
        if self.halted_rule is not None:
            self.risk.resumed(self.halted_rule)
        if account.is_halted:
            self.risk.halted()
        self.halted_rule = account.halted_by_rule

    def fill_open_orders(self, candle: Candle, account: Account) -> None:
        for order in [o for o in account.orders.values() if o.symbol == candle.symbol]:
            fill = self.broker.fill(order, candle, account.cash)
            if fill is None:
                account.cancel_order(order.order_id, reason="cash does not cover the order at the fill price",
                                     at=candle.open_time)
                continue
            pnl = account.fill_order(order.order_id, price=fill.price, quantity=fill.quantity, fee=fill.fee,
                                     at=candle.open_time, basis=fill.basis)
            self.settle(order, fill, pnl, account)

    def settle(self, order: Order, fill: Fill, pnl: Decimal, account: Account) -> None:
        """A round trip ends when the position is flat again; its result is net of both legs' fees."""
        if order.side is Side.BUY:
            self.entry_fees[order.symbol] = self.entry_fees.get(order.symbol, Decimal(0)) + fill.fee
        elif not account.position(order.symbol).quantity:
            self.risk.record_round_trip(pnl - fill.fee - self.entry_fees.pop(order.symbol, Decimal(0)))

    def apply_risk(self, candle: Candle, account: Account) -> None:
        at, halted_by = candle.close_time, account.halted_by_rule
        self.risk.observe(at, account.equity(self.last_prices))
        breach = self.risk.breach(halted_by)
        if breach is not None:
            self.halt(breach, candle, account)
        elif halted_by is not None and (reason := self.risk.may_resume(halted_by)) is not None:
            account.resume_trading(by=RISK, reason=reason, at=at)
            self.risk.resumed(halted_by)
        self.halted_rule = account.halted_by_rule

    def halt(self, breach: RiskBreach, candle: Candle, account: Account) -> None:
        at, halted_by = candle.close_time, account.halted_by_rule
        if halted_by is None:
            account.halt_trading(rule=breach.rule, reason=breach.reason, metrics=breach.metrics, by=RISK, at=at)
        else:
            account.escalate_halt(rule=breach.rule, reason=f"{breach.reason} (takes over the {halted_by} halt)",
                                  metrics=breach.metrics, by=RISK, at=at)
        self.risk.halted()
        if breach.rule == DRAWDOWN and self.risk.limits.exit_on_drawdown:
            self.exit_positions(candle, account, DRAWDOWN)

    def exit_positions(self, candle: Candle, account: Account, reason: str) -> None:
        """Sell every position at the next open, and drop pending entries: a limit that only blocked
        entries would let an open position keep losing."""
        at = candle.close_time
        for order in [o for o in account.orders.values() if o.side is Side.BUY]:
            account.cancel_order(order.order_id, reason=f"{reason}: pending entries are dropped", at=at)
        for symbol in list(account.positions):
            unsold = account.committed_sell_room(symbol)
            price = self.last_prices.get(symbol, candle.close)
            if unsold > 0 and not self.refused(symbol, Side.SELL, unsold, price, at, account):
                account.place_order(symbol, Side.SELL, unsold, at=at, signal_ref=signal_ref(candle), reason=reason,
                                    basis=self.basis())

    def act(self, candle: Candle, prediction: Prediction, account: Account) -> None:
        symbol, at = candle.symbol, candle.close_time
        if any(o.symbol == symbol for o in account.orders.values()):
            return
        held = account.position(symbol).quantity
        ref = signal_ref(candle)
        if prediction is Prediction.DOWN and held > 0:
            if self.refused(symbol, Side.SELL, held, candle.close, at, account):
                return
            account.place_order(symbol, Side.SELL, held, at=at, signal_ref=ref, reason="exit on down signal",
                                basis=self.basis())
        elif prediction is Prediction.UP and held == 0:
            self.enter(candle, account, ref)

    def enter(self, candle: Candle, account: Account, ref: str) -> None:
        at = candle.close_time
        if account.is_halted:
            account.reject_order(candle.symbol, Side.BUY, rule=account.halted_by_rule or "halted",
                                 reason=f"trading is halted by {account.halted_by_rule}: no new entries", at=at)
            return
        sizing = self.sizing.inputs(account.equity(self.last_prices), account.cash, candle.close,
                                    self.rules(candle.symbol).amount_step)
        quantity = sizing.quantity()
        if quantity <= 0:
            account.reject_order(candle.symbol, Side.BUY, rule="insufficient_cash",
                                 reason=f"cash {account.cash} buys no {candle.symbol}", at=at)
            return
        quantity = self.rules(candle.symbol).amount(quantity)
        if self.refused(candle.symbol, Side.BUY, quantity, candle.close, at, account):
            return
        account.place_order(candle.symbol, Side.BUY, quantity, at=at, signal_ref=ref, reason="entry on up signal",
                            basis=self.basis(sizing))

    def refused(self, symbol: str, side: Side, quantity: Decimal, price: Decimal, at: datetime,
                account: Account) -> bool:
        """The market's rules refuse this order (as the exchange would): recorded as a rejection by that rule."""
        refusal = self.rules(symbol).refusal(symbol, quantity, price)
        if refusal is not None:
            rule, reason = refusal
            account.reject_order(symbol, side, rule=rule, reason=reason, at=at)
        return refusal is not None

    def basis(self, sizing: SizingInputs | None = None) -> OrderBasis:
        """What an order placed now rests on: this tick's signal and every risk rule at this close."""
        assert self.signal is not None, "orders are placed while trading a tick"
        stream, version = self.signal
        return OrderBasis(signal_stream=stream, signal_version=version, checks=self.risk.checks(), sizing=sizing)


def signal_ref(candle: Candle) -> str:
    return f"{candle.symbol} {candle.timeframe} {candle.open_time.isoformat()}"


def gap_flags(market: Market, candle: Candle, sessions: Sessions) -> tuple[str, ...]:
    """`gap_before:N`: N candles missing while the market was open (the same count as data_quality's)."""
    if market.last_open_time is None:
        return ()
    missing = sessions.missing(market.last_open_time, candle.open_time, timeframe_delta(candle.timeframe))
    return (f"gap_before:{missing}",) if missing > 0 else ()
