"""A fast, realistic synthetic trading history, built through the domain aggregates.

Used by the projection tests and `scripts/bench_rebuild.py`: every event goes
through the aggregates' own rules (so the ledger invariants hold), and many
ticks are saved per transaction so a million events are written in seconds.

Per tick and symbol: a closed candle and its signal; orders placed on one
candle fill at the next candle's open; now and then a rejection, a halt and
its resume, an agent heartbeat, a client connecting or leaving.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from decimal import Decimal


from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.domain.account import Account, money
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction, Side, timeframe_delta

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
PRICE_QUANTUM = Decimal("1e-8")
FEE_RATE = Decimal("0.001")
FEATURES = ("return_1", "sma_fast", "sma_slow")


class HistoryBuilder:
    """Appends ticks to a store; `extend(n)` can be called again to continue the same history."""

    def __init__(self, store: LedgerStore, *, symbols: tuple[str, ...] = ("ETH/BTC", "LTC/BTC"),
                 timeframe: str = "5m", account: str = "paper", seed: int = 7) -> None:
        self.store = store
        self.random = random.Random(seed)
        self.step = timeframe_delta(timeframe)
        self.clock = START
        self.markets = {s: Market.list(s, timeframe, at=START) for s in symbols}
        self.prices = {s: Decimal("0.05") for s in symbols}
        self.account = Account.open(account, "BTC", Decimal("1"), at=START)
        self.run = AgentRun.start(key=f"synthetic:{seed}", version="synthetic", host="bench", pid=1,
                                  config_digest="0" * 64, components=("agent",), model="synthetic",
                                  decision_config={}, at=START)
        self.gateway = Gateway.start(key=f"synthetic:{seed}", kind="api", host="bench", pid=2, at=START)
        self.sessions = 0
        self.ticks = 0
        self.pending: list[object] = []
        self.collect()

    def extend(self, ticks: int, *, ticks_per_save: int = 500) -> int:
        """Append `ticks` more candles per symbol; returns the number of events appended."""
        appended = 0
        for done in range(0, ticks, ticks_per_save):
            for _ in range(min(ticks_per_save, ticks - done)):
                self.tick()
            appended += self.save()
        return appended

    def save(self) -> int:
        events, self.pending = self.pending, []
        self.store.append(events)
        return len(events)

    def collect(self) -> None:
        # Tick by tick, as the agent records them, so the log interleaves the streams in time order.
        for aggregate in (*self.markets.values(), self.account, self.run, self.gateway):
            self.pending.extend(aggregate.collect_events())

    def tick(self) -> None:
        at = self.clock
        self.clock += self.step
        for symbol, market in self.markets.items():
            candle = self.candle(symbol, at)
            self.fill_orders(symbol, candle)
            market.close_candle(candle)
            self.signal(market)
            self.trade(symbol, candle)
        self.ticks += 1
        self.housekeeping(self.clock)
        self.collect()

    def candle(self, symbol: str, open_time: datetime) -> Candle:
        open_ = self.prices[symbol]
        close = max(PRICE_QUANTUM, (open_ * Decimal(1 + self.random.gauss(0, 0.01))).quantize(PRICE_QUANTUM))
        self.prices[symbol] = close
        high, low = max(open_, close) * Decimal("1.001"), min(open_, close) * Decimal("0.999")
        return Candle(symbol=symbol, timeframe=self.markets[symbol].timeframe, open_time=open_time, open=open_,
                      high=high.quantize(PRICE_QUANTUM), low=low.quantize(PRICE_QUANTUM), close=close,
                      volume=Decimal(self.random.randint(1, 10_000)))

    def signal(self, market: Market) -> None:
        prediction = self.random.choice((Prediction.UP, Prediction.DOWN, Prediction.HOLD, Prediction.HOLD))
        confidence = round(self.random.random(), 6)
        members = (MemberPrediction(name="a", prediction=prediction, confidence=confidence),)
        market.generate_signal(
            Decision(prediction=prediction, confidence=confidence, model_name="synthetic", model_version="1",
                     members=members),
            is_actionable=prediction is not Prediction.HOLD, data_quality=1.0, features_used=FEATURES,
            feature_values={name: round(self.random.random(), 6) for name in FEATURES},
        )

    def fill_orders(self, symbol: str, candle: Candle) -> None:
        at = candle.open_time
        for order in [o for o in self.account.orders.values() if o.symbol == symbol]:
            price, quantity = candle.open, order.quantity
            fee = money(price * quantity * FEE_RATE)
            if order.side is Side.BUY and money(price * quantity) + fee > self.account.cash:
                self.account.cancel_order(order.order_id, reason="cash no longer covers the fill", at=at)
            else:
                self.account.fill_order(order.order_id, price=price, quantity=quantity, fee=fee, at=at)

    def trade(self, symbol: str, candle: Candle) -> None:
        at, roll = candle.close_time, self.random.random()
        held = self.account.committed_sell_room(symbol)
        if roll < 0.08 and held > 0:
            self.account.place_order(symbol, Side.SELL, held, at=at, reason="exit")
        elif roll < 0.16 and not held and not self.account.orders:
            if self.account.is_halted:
                self.account.reject_order(symbol, Side.BUY, rule="halted", reason="trading is halted", at=at)
                return
            quantity = (self.account.cash * Decimal("0.3") / candle.close).quantize(PRICE_QUANTUM)
            if quantity > 0:
                self.account.place_order(symbol, Side.BUY, quantity, at=at, reason="entry")

    def housekeeping(self, at: datetime) -> None:
        roll = self.random.random()
        if self.ticks % 10 == 0:
            self.run.beat(at=at, candles_processed=self.ticks * len(self.markets), feed_lag=0.0)
        if roll < 0.01:
            if self.account.is_halted:
                self.account.resume_trading(by="risk", reason="cooldown over", at=at)
            else:
                self.account.halt_trading(rule="max_drawdown", reason="drawdown", metrics={"dd": "21"},
                                          by="risk", at=at)
        elif roll < 0.03 and self.gateway.sessions:
            self.gateway.disconnect_client(session_id=next(iter(self.gateway.sessions)), reason="bye", at=at)
        elif roll < 0.05:
            self.sessions += 1
            self.gateway.connect_client(session_id=f"s{self.sessions}", channel="ws", peer="127.0.0.1", at=at)


def build_history(store: LedgerStore, ticks: int, *, ticks_per_save: int = 500, seed: int = 7) -> HistoryBuilder:
    builder = HistoryBuilder(store, seed=seed)
    builder.extend(ticks, ticks_per_save=ticks_per_save)
    return builder
