"""A live system holding a position, for the force_exit tests of every channel (API, dashboard, Telegram).

The agent trades a real file as a live feed would deliver it: every candle up to the first one after
whose close the file's backtest holds a position arrives at once; after that the next candle "closes"
only when the test calls `step()`. Meanwhile the agent waits as it waits for a live exchange's next candle
(adapters/services/trading `wait`: heartbeats, operator commands applied within 0.1 s). So the system is
found holding that position, and a forced exit issued then must fill at the open of the next candle.
Tests wait for recorded events, never for time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from uuid import UUID

from tradeledger.adapters.composition import Composition
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.ports import scan
from tradeledger.adapters.inputfile import input_file
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.adapters.traders import build_trader
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.settings import Settings
from tests.apisupport import api_settings, serving
from tests.composing import composed
from tests.conftest import CANDLES
from tests.fakebotapi import wait_until

DATA = CANDLES / "ETH_BTC-5m.csv"
DEADLINE = 60.0
WAIT_SECONDS = 0.05  # the agent's wait for the next candle, repeated until the test steps


class Live(NamedTuple):
    container: Composition
    url: str  # the API's
    agent: TradingSession
    held: Candle  # the candle after whose close the position is held
    next: Candle  # the candle whose open a forced exit fills at
    steps: threading.Semaphore  # released once per candle the test lets close after `held`

    def step(self) -> None:
        self.steps.release()


def first_holding(settings: Settings, candles: list[Candle]) -> int:
    """The index of the first candle after which the agent holds a position with no order pending."""
    trader, account = build_trader(settings), Account.open("scratch", "BTC", settings.trading.initial_balance,
                                                         at=candles[0].open_time)
    market = Market.list(candles[0].symbol, candles[0].timeframe, at=candles[0].open_time)
    for index, candle in enumerate(candles):
        trader.trade(candle, trader.observe(candle), market, account)
        if account.positions and not account.orders:
            return index
    raise AssertionError("the file's backtest never holds a position")


def stepped(agent: TradingSession, candles: list[Candle], held: int, steps: threading.Semaphore,
            stop: threading.Event) -> Iterator[Candle]:
    yield from candles[:held + 1]
    for candle in candles[held + 1:]:
        while not steps.acquire(blocking=False):
            if stop.is_set():
                return
            agent.wait(WAIT_SECONDS, stop)
        yield candle


def trade(agent: TradingSession, feed: Iterator[Candle], stop: threading.Event) -> None:
    agent.start(("agent", "projections", "api"), [input_file(DATA)])
    try:
        agent.run_feed(feed, stop=stop)
    finally:
        agent.stop("stopped on request")


@contextmanager
def live_holding(store_url: str, **overrides: Any) -> Iterator[Live]:
    """Projections, the agent on DATA (as `tradeledger run --data` runs it, but stepped) and the API."""
    settings = api_settings(store_url, **overrides)
    candles = load_candles(DATA).candles
    with composed(settings) as container:
        _, paced = container.paced_settings(str(DATA))
        held = first_holding(paced, candles)
        runner = ProjectionRunner(container.feed, container.engine, poll_interval=0.05)
        runner.start()
        stop, steps = threading.Event(), threading.Semaphore(0)
        agent = container.agent(paced)
        agent.resume()
        thread = threading.Thread(target=trade, args=(agent, stepped(agent, candles, held, steps, stop), stop))
        thread.start()
        try:
            wait_until(lambda: agent.trader.last_candles.get(candles[held].symbol) == candles[held],
                       timeout=DEADLINE, what="the agent to hold its position")
            with serving(container) as url:
                yield Live(container, url, agent, candles[held], candles[held + 1], steps)
        finally:
            stop.set()
            thread.join()
            runner.stop()


def recorded(container: Composition, kind: type, **fields: Any) -> list[Any]:
    return [r.event for r in scan(container.feed, types=[kind])
            if all(getattr(r.event, k) == v for k, v in fields.items())]


def forced_exit_filled(live: Live, command_id: UUID, by: str) -> tuple[Account.OrderPlaced, Account.OrderFilled]:
    """The forced sell of `command_id`, once filled: placed on the held candle's close with who asked."""
    (applied,) = wait_until(lambda: recorded(live.container, Account.CommandApplied, command_id=command_id),
                            timeout=DEADLINE, what="the agent to apply the force_exit")
    (placed,) = [e for e in recorded(live.container, Account.OrderPlaced, exit_reason="force_exit")]
    live.step()
    (filled,) = wait_until(lambda: recorded(live.container, Account.OrderFilled, order_id=placed.order_id),
                           timeout=DEADLINE, what="the forced exit to fill")
    assert applied.command == "force_exit" and placed.reason.startswith(f"force_exit by {by} via ")
    assert placed.timestamp == live.held.close_time and placed.quantity == filled.quantity
    assert (filled.filled_at, filled.basis.open) == (live.next.open_time, live.next.open), "the next candle's open"
    return placed, filled
