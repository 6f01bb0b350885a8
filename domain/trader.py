"""The trading decision for one candle: the same code in backtest, live and replay.

A tick has two halves:
- `observe(candle)` runs the features and the predictor. It depends only on
  the candles seen so far, so it runs exactly once per candle.
- `trade(candle, signal, market, account)` records the candle and signal,
  fills the orders placed on the previous candle at this candle's open (a
  limit order where the candle reached it), exits by a stop or take-profit
  inside the candle (domain.exits), applies the risk rules, the exits decided
  at a close, and places new orders. It only touches the
  aggregates and the trader's account-side state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

import msgspec

from tradeledger.domain import exits
from tradeledger.domain.account import Account
from tradeledger.domain.exits import ExitRules, Holding
from tradeledger.domain.features import FeatureEngine, Features
from tradeledger.domain.market import Market
from tradeledger.domain.marketrules import RulesFor, no_rules
from tradeledger.domain.orders import (PRICE_QUANTUM, FillBasis, Order, OrderBasis, OrderPolicy, SizingInputs,
                                        touch_price)
from tradeledger.domain.predictors import Predictor
from tradeledger.domain.risk import DRAWDOWN, RISK, RiskBreach, RiskLimits, RiskMonitor
from tradeledger.domain.sessions import Sessions
from tradeledger.domain.values import Candle, Decision, OrderType, Prediction, Side, timeframe_delta

MIN_DATA_QUALITY = 0.9
ENTRIES_STOPPED = "entries_stopped"  # the rule an entry is rejected by after stop_entry
MAX_OPEN_TRADES = "max_open_trades"  # the rule an entry beyond trading.max_open_trades is rejected by


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    price: Decimal
    quantity: Decimal
    fee: Decimal
    basis: FillBasis | None = None


class Broker(Protocol):
    def fill(self, order: Order, candle: Candle, cash: Decimal) -> Fill | None:
        """Fill an order in this candle (a market order at its open, a limit or stop order that the candle
        reached at its level or the open), or None when it cannot be afforded."""
        ...


class Sizing(msgspec.Struct, frozen=True, kw_only=True):
    position_size: Decimal
    fee_rate: Decimal
    slippage_bps: Decimal
    stake_amount: Decimal | None = None  # trading.stake_amount: a fixed budget per entry instead of position_size
    max_open_trades: int | None = None  # trading.max_open_trades: None, no limit

    def inputs(self, equity: Decimal, cash: Decimal, price: Decimal, amount_step: Decimal | None = None
               ) -> SizingInputs:
        return SizingInputs(equity=equity, cash=cash, position_size=self.position_size, fee_rate=self.fee_rate,
                            slippage_bps=self.slippage_bps, price=price, amount_step=amount_step,
                            stake_amount=self.stake_amount)


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
        exit_rules: ExitRules = ExitRules(),
        orders: OrderPolicy = OrderPolicy(),
    ) -> None:
        self.exit_rules = exit_rules  # exits.* (domain.exits)
        self.orders = orders  # market or limit entries and signal exits
        self.holdings: dict[str, Holding] = {}  # the open positions as their exits see them
        self.model_factory = model_factory
        self.rules = rules  # each market's trading rules: steps and minimums (domain.marketrules)
        self.models: dict[str, MarketModel] = {}
        self.sizing = sizing
        self.broker = broker
        self.risk = RiskMonitor(limits)
        self.last_prices: dict[str, Decimal] = {}
        self.last_candles: dict[str, Candle] = {}  # what a forced order between ticks is placed on (domain.control)
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
        self.protect(candle, account)
        self.expire_limits(candle, account)
        self.last_prices[candle.symbol] = candle.close
        self.last_candles[candle.symbol] = candle
        self.apply_risk(candle, account)
        self.exit_at_close(candle, account)
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
        """Market orders at this open; limit orders only when this candle reached their level."""
        for order in [o for o in account.orders.values() if o.symbol == candle.symbol]:
            if order.limit_price is None or touch_price(order.order_type, order.side, order.limit_price, candle):
                self.fill(order, candle, account)

    def fill(self, order: Order, candle: Candle, account: Account) -> None:
        fill = self.broker.fill(order, candle, account.cash)
        if fill is None:
            account.cancel_order(order.order_id, reason="cash does not cover the order at the fill price",
                                 at=candle.open_time)
            return
        pnl = account.fill_order(order.order_id, price=fill.price, quantity=fill.quantity, fee=fill.fee,
                                 at=candle.open_time, basis=fill.basis)
        self.settle(order, fill, pnl, account, candle)

    def settle(self, order: Order, fill: Fill, pnl: Decimal, account: Account, candle: Candle) -> None:
        """A round trip ends when the position is flat again; its result is net of both legs' fees."""
        if order.side is Side.BUY:
            self.entry_fees[order.symbol] = self.entry_fees.get(order.symbol, Decimal(0)) + fill.fee
            self.holdings.setdefault(order.symbol, Holding(entry_price=fill.price, entered_at=candle.open_time,
                                                           highest_close=fill.price,
                                                           filled_inside=order.limit_price is not None
                                                           and fill.price != candle.open))
        elif not account.position(order.symbol).quantity:
            self.holdings.pop(order.symbol, None)
            self.risk.record_round_trip(pnl - fill.fee - self.entry_fees.pop(order.symbol, Decimal(0)))

    def protect(self, candle: Candle, account: Account) -> None:
        """The stops and the take-profit inside this candle (domain.exits), from the candle the entry filled at:
        the whole candle trades after its open. One fills at once, taking over a resting limit exit."""
        holding = self.holdings.get(candle.symbol)
        if holding is None:
            return
        rules = self.rules(candle.symbol)
        trigger = self.exit_rules.intrabar(
            holding, candle, lambda p: rules.price(p.quantize(PRICE_QUANTUM), Side.SELL),
            lambda p: rules.price(p.quantize(PRICE_QUANTUM), Side.BUY))
        if trigger is None:
            return
        at, held = candle.open_time, account.position(candle.symbol).quantity
        for order in [o for o in account.orders.values() if o.symbol == candle.symbol and o.side is Side.SELL]:
            account.cancel_order(order.order_id, reason=f"{trigger.reason} at {trigger.level} takes over", at=at)
        if not self.refused(candle.symbol, Side.SELL, held, trigger.level, at, account):
            placed = account.place_order(candle.symbol, Side.SELL, held, at=at, signal_ref=signal_ref(candle),
                                         reason=f"{trigger.reason} at {trigger.level}", basis=self.basis(),
                                         exit_reason=trigger.reason, order_type=trigger.order_type,
                                         limit_price=trigger.level)
            self.fill(account.open_order(placed), candle, account)

    def expire_limits(self, candle: Candle, account: Account) -> None:
        """A limit order this candle did not reach is cancelled once it waited trading.order_timeout_candles."""
        for order in [o for o in account.orders.values() if o.symbol == candle.symbol and o.limit_price is not None]:
            waited = (candle.close_time - order.placed_at) // timeframe_delta(candle.timeframe)
            if waited >= self.orders.timeout_candles:
                account.cancel_order(order.order_id, at=candle.close_time, reason=f"limit {order.limit_price} "
                                     f"not reached in {waited} candles (trading.order_timeout_candles)")

    def exit_at_close(self, candle: Candle, account: Account) -> None:
        """The holding limit and the ROI table at this close (domain.exits): sold at the next open."""
        holding = self.holdings.get(candle.symbol)
        if holding is None:
            return
        holding.closed(candle)
        reason, unsold = self.exit_rules.at_close(holding, candle), account.committed_sell_room(candle.symbol)
        at = candle.close_time
        if reason is not None and unsold > 0 and not self.refused(candle.symbol, Side.SELL, unsold, candle.close,
                                                                   at, account):
            account.place_order(candle.symbol, Side.SELL, unsold, at=at, signal_ref=signal_ref(candle),
                                reason=f"exit by {reason}", basis=self.basis(), exit_reason=reason)

    def order_kind(self, side: Side, candle: Candle) -> tuple[OrderType, Decimal | None]:
        """A limit order's type and level (rounded to the price step against the trader), or a market order."""
        if not self.orders.limit_for(side):
            return OrderType.MARKET, None
        away = Side.SELL if side is Side.BUY else Side.BUY  # a buy limit rounds down, a sell limit up
        return OrderType.LIMIT, self.rules(candle.symbol).price(self.orders.level(side, candle.close), away)

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
        for order in [o for o in account.orders.values() if o.side is Side.BUY or o.limit_price is not None]:
            dropped = "pending entries are" if order.side is Side.BUY else "a resting limit exit is"
            account.cancel_order(order.order_id, reason=f"{reason}: {dropped} dropped", at=at)
        for symbol in list(account.positions):
            unsold = account.committed_sell_room(symbol)
            price = self.last_prices.get(symbol, candle.close)
            if unsold > 0 and not self.refused(symbol, Side.SELL, unsold, price, at, account):
                account.place_order(symbol, Side.SELL, unsold, at=at, signal_ref=signal_ref(candle), reason=reason,
                                    basis=self.basis(), exit_reason=reason)

    def act(self, candle: Candle, prediction: Prediction, account: Account) -> None:
        symbol, at = candle.symbol, candle.close_time
        if any(o.symbol == symbol for o in account.orders.values()):
            return
        held = account.position(symbol).quantity
        ref = signal_ref(candle)
        if prediction is Prediction.DOWN and held > 0:
            if self.refused(symbol, Side.SELL, held, candle.close, at, account):
                return
            kind, level = self.order_kind(Side.SELL, candle)
            account.place_order(symbol, Side.SELL, held, at=at, signal_ref=ref, reason="exit on down signal",
                                basis=self.basis(), exit_reason=exits.SIGNAL, order_type=kind, limit_price=level)
        elif prediction is Prediction.UP and held == 0:
            self.enter(candle, account, ref)

    def enter(self, candle: Candle, account: Account, ref: str, reason: str = "entry on up signal") -> None:
        at = candle.close_time
        if account.is_halted:
            account.reject_order(candle.symbol, Side.BUY, rule=account.halted_by_rule or "halted",
                                 reason=f"trading is halted by {account.halted_by_rule}: no new entries", at=at)
            return
        if account.entries_stopped:
            account.reject_order(candle.symbol, Side.BUY, rule=ENTRIES_STOPPED,
                                 reason="entries are stopped by an operator (stop_entry): no new entries", at=at)
            return
        if self.too_many_open(candle, account):
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
        kind, level = self.order_kind(Side.BUY, candle)
        account.place_order(candle.symbol, Side.BUY, quantity, at=at, signal_ref=ref, reason=reason,
                            basis=self.basis(sizing), order_type=kind, limit_price=level)

    def too_many_open(self, candle: Candle, account: Account) -> bool:
        """`trading.max_open_trades` reached: a pending entry counts as open, or two signals on one candle
        time would both enter."""
        limit = self.sizing.max_open_trades
        trades = set(account.positions) | {o.symbol for o in account.orders.values() if o.side is Side.BUY}
        if limit is None or len(trades) < limit:
            return False
        account.reject_order(candle.symbol, Side.BUY, rule=MAX_OPEN_TRADES, at=candle.close_time,
                             reason=f"{len(trades)} trades are open ({', '.join(sorted(trades))}): "
                                    f"trading.max_open_trades is {limit}")
        return True

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
