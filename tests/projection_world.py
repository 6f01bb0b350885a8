"""Random but valid trading histories for the projection tests, made by the real aggregates.

`commands()` is a hypothesis strategy; `World.run` plays the commands against
the aggregates. A command the domain refuses (selling more than is held, a
fill the cash does not cover, resuming trading that is not halted) records
nothing and is skipped, so every history is one the system could record.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import strategies as st

from tradeledger.domain.account import Account, money
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.errors import DomainError
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction, Side

SYMBOLS = ("ETH/BTC", "LTC/BTC")
START = datetime(2024, 3, 1, 22, tzinfo=timezone.utc)  # two hours before midnight: days change often
QUANTUM = Decimal("1e-8")
FEE_RATE = Decimal("0.001")

Command = tuple[Any, ...]


def commands() -> st.SearchStrategy[list[Command]]:
    symbol = st.integers(0, len(SYMBOLS) - 1)
    pick = st.integers(0, 10)
    candle = st.tuples(st.just("candle"), symbol, st.integers(-300, 300), st.booleans(),
                       st.sampled_from((5, 5, 5, 55, 600, 1440)))
    buy = st.tuples(st.just("buy"), symbol, st.integers(1, 100))
    sell = st.tuples(st.just("sell"), symbol, st.integers(1, 100))
    fill = st.tuples(st.just("fill"), pick, st.booleans(), st.integers(-30, 30))
    command = st.one_of(
        # Trading is weighted up: the interesting histories are candles, orders and fills interleaved.
        candle, candle, candle, buy, buy, sell, sell, fill, fill, fill,
        st.tuples(st.just("cancel"), pick),
        st.tuples(st.just("reject"), symbol),
        st.tuples(st.sampled_from(("halt", "resume", "agent_start", "agent_beat", "agent_stop",
                                   "gateway_start", "gateway_stop")), pick),
        st.tuples(st.sampled_from(("connect", "disconnect")), pick),
    )
    return st.lists(command, min_size=5, max_size=80)


class World:
    def __init__(self) -> None:
        self.clock = START
        self.account = Account.open("paper", "BTC", Decimal("1"), at=START)
        self.markets = {s: Market.list(s, "5m", at=START) for s in SYMBOLS}
        self.prices = {s: Decimal("0.05") for s in SYMBOLS}
        self.runs: list[AgentRun] = []
        self.gateways: list[Gateway] = []
        self.sessions = 0
        self.events: list[Any] = []
        self.collect()

    def collect(self) -> None:
        for aggregate in (self.account, *self.markets.values(), *self.runs, *self.gateways):
            self.events.extend(aggregate.collect_events())

    def run(self, script: list[Command]) -> list[Any]:
        for command in script:
            self.clock += timedelta(minutes=1)
            try:
                getattr(self, command[0])(*command[1:])
            except DomainError:
                pass
            self.collect()
        return self.events

    # -- markets and account ------------------------------------------------------

    def candle(self, index: int, move: int, signal: bool, minutes: int) -> None:
        symbol = SYMBOLS[index]
        self.clock += timedelta(minutes=minutes)
        open_ = self.prices[symbol]
        close = max(QUANTUM, (open_ * (1 + Decimal(move) / 10_000)).quantize(QUANTUM))
        self.prices[symbol] = close
        market = self.markets[symbol]
        market.close_candle(Candle(symbol=symbol, timeframe="5m", open_time=self.clock, open=open_,
                                   high=max(open_, close), low=min(open_, close), close=close, volume=Decimal(3)))
        if signal:
            prediction = Prediction.UP if move > 0 else Prediction.DOWN if move < 0 else Prediction.HOLD
            market.generate_signal(
                Decision(prediction=prediction, confidence=abs(move) / 300, model_name="m", model_version="1",
                         members=(MemberPrediction(name="a", prediction=prediction, confidence=0.5),)),
                is_actionable=move != 0, data_quality=1.0, features_used=("x",), feature_values={"x": move / 7},
            )

    def buy(self, index: int, percent: int) -> None:
        symbol = SYMBOLS[index]
        quantity = (self.account.cash * percent / 100 / self.prices[symbol]).quantize(QUANTUM, ROUND_DOWN)
        self.account.place_order(symbol, Side.BUY, quantity, at=self.clock, reason="buy")

    def sell(self, index: int, percent: int) -> None:
        symbol = SYMBOLS[index]
        room = self.account.committed_sell_room(symbol)
        quantity = room if percent == 100 else (room * percent / 100).quantize(QUANTUM, ROUND_DOWN)
        self.account.place_order(symbol, Side.SELL, quantity, at=self.clock, reason="sell")

    def fill(self, pick: int, partial: bool, slippage: int) -> None:
        if not self.account.orders:
            return
        order = list(self.account.orders.values())[pick % len(self.account.orders)]
        price = (self.prices[order.symbol] * (1 + Decimal(slippage) / 10_000)).quantize(QUANTUM)
        quantity = (order.quantity / 2).quantize(QUANTUM, ROUND_DOWN) if partial else order.quantity
        self.account.fill_order(order.order_id, price=price, quantity=quantity,
                                fee=money(price * quantity * FEE_RATE), at=self.clock)

    def cancel(self, pick: int) -> None:
        if self.account.orders:
            order = list(self.account.orders)[pick % len(self.account.orders)]
            self.account.cancel_order(order, reason="cancelled", at=self.clock)

    def reject(self, index: int) -> None:
        self.account.reject_order(SYMBOLS[index], Side.BUY, rule="max_drawdown", reason="limit", at=self.clock)

    def halt(self, _pick: int) -> None:
        self.account.halt_trading(rule="manual", reason="test", metrics={"dd": "1"}, by="api", at=self.clock)

    def resume(self, _pick: int) -> None:
        self.account.resume_trading(by="api", reason="test", at=self.clock)

    # -- processes ----------------------------------------------------------------

    def agent_start(self, _pick: int) -> None:
        self.runs.append(AgentRun.start(key=f"run{len(self.runs)}", version="1", host="h", pid=len(self.runs),
                                        config_digest="d", components=("agent",), model="m", decision_config={},
                                        at=self.clock))

    def agent_beat(self, pick: int) -> None:
        if self.runs:
            self.runs[pick % len(self.runs)].beat(at=self.clock, candles_processed=pick, feed_lag=pick / 10)

    def agent_stop(self, pick: int) -> None:
        if self.runs:
            self.runs[pick % len(self.runs)].stop(reason="done", clean=pick % 2 == 0, at=self.clock)

    def gateway_start(self, _pick: int) -> None:
        self.gateways.append(Gateway.start(key=f"gw{len(self.gateways)}", kind="api", host="h",
                                           pid=len(self.gateways), at=self.clock))

    def gateway_stop(self, pick: int) -> None:
        if self.gateways:
            self.gateways[pick % len(self.gateways)].stop(reason="shutdown", at=self.clock)

    def connect(self, pick: int) -> None:
        if self.gateways:
            self.sessions += 1
            self.gateways[pick % len(self.gateways)].connect_client(session_id=f"s{self.sessions}", channel="ws",
                                                                   peer="127.0.0.1", at=self.clock)

    def disconnect(self, pick: int) -> None:
        open_sessions = [(g, s) for g in self.gateways for s in g.sessions]
        if open_sessions:
            gateway, session = open_sessions[pick % len(open_sessions)]
            gateway.disconnect_client(session_id=session, reason="bye", at=self.clock)
