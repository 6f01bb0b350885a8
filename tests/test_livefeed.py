"""The live feed (issue 13): the REAL ccxt binance client against the local fake exchange (real sockets),
the feed's state in health, /api/health, the dashboard and alerts, and the synthetic demo's clock.

The fake's clock runs fast (20 five-minute candles per real second); every wait is for visible progress
(events recorded, requests answered, health states), never for time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.apisupport import api_settings, events
from tests.composing import composed
from tests.conftest import ROOT
from tests.fakeexchange import ExchangeClock, FakeExchange, ServerError
from tests.telegram_support import CHAT
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.feeds import WARMUP_CANDLES
from tradeledger.adapters.services.trading import run_live
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.projections.alert_watch import AlertWatcher
from tradeledger.projections.outbox import Outbox

STEP = timedelta(minutes=5)
RATE = 20 * 300  # market seconds per real second: 20 candles per second
DEADLINE = 60  # seconds before a wait is declared hung
OUTAGE = 40  # failed answers in a row (time and klines), each a poll interval apart: ~10 candle times


def wait_for(what: str, ready: Callable[[], Any], failed: Callable[[], BaseException | None]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not ready():
        error = failed()
        assert error is None, f"the agent died before {what}: {error!r}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.01)  # between checks: the condition is the visible progress


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange(clock=ExchangeClock()) as fake:
        fake.open_candles("ETH/BTC", WARMUP_CANDLES + 10)  # frozen until the warm-up is recorded
        yield fake


def run_fast(fake: FakeExchange) -> None:
    fake.clock.set(fake.clock.now(), rate=RATE)


def settings_for(url: str, fake: FakeExchange) -> Any:
    return api_settings(url, **{"exchange.name": "binance", "exchange.api_url": fake.url, "exchange.retries": "0",
                                "exchange.timeout": "0.5", "exchange.poll_interval": "0.02",
                                "agent.heartbeat_interval": "0.1"})


class LiveAgent:
    """`run_live` on the exchange in a thread, as `tradeledger agent --exchange binance` runs it."""

    def __init__(self, root: Composition) -> None:
        exchange, settings = root.paced_settings(None)
        assert exchange is not None
        self.session = root.agent(settings)
        self.session.resume()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.main, args=(settings, exchange))

    def main(self, settings: Any, exchange: Any) -> None:
        try:
            run_live(self.session, settings, self.stop, data=None, exchange=exchange, components=("test",))
        except BaseException as error:  # noqa: BLE001 - reported by the waits
            self.error = error

    def __enter__(self) -> LiveAgent:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def feed_health(root: Composition) -> tuple[str | None, str | None]:
    """The feed as the health view (/api/health, the dashboard) shows it, the read models caught up."""
    root.runner().catch_up()
    agent = root.health.report().agent
    return agent.feed, agent.feed_source


def recorded(root: Composition) -> list[Market.CandleClosed]:
    return events(root, Market.CandleClosed)


def served(fake: FakeExchange, open_time: datetime) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in fake.series["ETH/BTC"].at(open_time).values)


def test_a_live_run_across_an_outage_records_every_served_closed_candle_once_in_order(
        sqlite_url: str, fake: FakeExchange) -> None:
    first_open = datetime.fromtimestamp(fake.series["ETH/BTC"].times[10] / 1000, fake.clock.now().tzinfo)
    missing = first_open + (WARMUP_CANDLES + 40) * STEP  # the exchange never returns this one: a gap
    fake.missing.add(missing)
    with composed(settings_for(sqlite_url, fake)) as root, LiveAgent(root) as agent:
        wait_for("the warm-up back-filled", lambda: len(recorded(root)) >= WARMUP_CANDLES, lambda: agent.error)
        assert len(recorded(root)) == WARMUP_CANDLES, "only closed candles: the clock is frozen"
        run_fast(fake)
        wait_for("live candles", lambda: len(recorded(root)) >= WARMUP_CANDLES + 20, lambda: agent.error)
        status = agent.session.feed_status
        assert status is not None
        wait_for("live in health", lambda: feed_health(root) == ("live", "binance"), lambda: agent.error)
        fake.fail_next(*[ServerError()] * OUTAGE, paths=("/api/v3/time", "/api/v3/klines"))
        wait_for("the outage in health", lambda: feed_health(root)[0] in ("lagging", "down"), lambda: agent.error)
        wait_for("the outage", lambda: fake.count("/api/v3/time", "ServerError")
                 + fake.count("/api/v3/klines", "ServerError") >= OUTAGE, lambda: agent.error)
        during = len(recorded(root))
        wait_for("candles after the outage", lambda: len(recorded(root)) >= during + 30, lambda: agent.error)
        assert status.reconnects >= 1 and status.error is None and status.failures == 0
        wait_for("live again in health", lambda: feed_health(root) == ("live", "binance"), lambda: agent.error)
    end = fake.clock.now()
    candles = recorded(root)
    times = [c.open_time for c in candles]
    assert times[0] == first_open, "a fresh store starts WARMUP_CANDLES before the exchange's now"
    expected = [first_open + i * STEP for i in range((times[-1] - first_open) // STEP + 1)]
    assert times == [t for t in expected if t != missing], "every served candle once, in order, the gap left"
    assert all(c.open_time + STEP <= end for c in candles), "no candle recorded before it closed"
    assert all((c.open, c.high, c.low, c.close, c.volume) == served(fake, c.open_time) for c in candles), \
        "exactly what the exchange served"
    after_gap = next(c for c in candles if c.open_time == missing + STEP)
    assert "gap_before:1" in after_gap.quality_flags
    with composed(settings_for(sqlite_url, fake)) as root:
        beats = events(root, AgentRun.Heartbeat)
        assert beats and all(b.feed_lag >= 0 for b in beats)


def test_a_restart_back_fills_what_closed_meanwhile_and_records_nothing_twice(
        sqlite_url: str, fake: FakeExchange) -> None:
    with composed(settings_for(sqlite_url, fake)) as root:
        with LiveAgent(root) as agent:
            wait_for("candles", lambda: len(recorded(root)) >= WARMUP_CANDLES, lambda: agent.error)
            run_fast(fake)
            wait_for("live candles", lambda: len(recorded(root)) >= WARMUP_CANDLES + 5, lambda: agent.error)
        before = len(recorded(root))
        # The agent is down while candles keep closing at the exchange; a new one back-fills them.
        wait_for("candles closing meanwhile", lambda: fake.clock.now() >= recorded(root)[-1].open_time + 30 * STEP,
                 lambda: None)
        with LiveAgent(root) as agent:
            wait_for("the back-fill", lambda: len(recorded(root)) >= before + 40, lambda: agent.error)
        times = [c.open_time for c in recorded(root)]
        assert times == sorted(set(times)), "nothing twice, in order"
        assert all(b - a == STEP for a, b in zip(times, times[1:])), "no candle the exchange served is missing"


def test_run_on_the_exchange_killed_mid_run_and_restarted_back_fills_with_nothing_twice(
        sqlite_url: str, fake: FakeExchange) -> None:
    """The done-when of issue 13: `tradeledger run --exchange binance` (a real process, SIGKILLed)."""
    env = {**os.environ, "TRADELEDGER_PREDICTOR__NAME": "sma_cross", "TRADELEDGER_API__TOKEN": "",
           "TRADELEDGER_EXCHANGE__RETRIES": "0", "TRADELEDGER_EXCHANGE__TIMEOUT": "0.5",
           "TRADELEDGER_EXCHANGE__POLL_INTERVAL": "0.02", "TRADELEDGER_AGENT__HEARTBEAT_INTERVAL": "0.2",
           "TRADELEDGER_PROJECTIONS__POLL_INTERVAL": "0.05"}
    command = [sys.executable, "-m", "tradeledger.adapters.cli", "--database", sqlite_url, "run", "--port", "0",
               "--exchange", "binance", "--api-url", fake.url]
    run_fast(fake)
    with composed(api_settings(sqlite_url)) as root:
        first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
        try:
            wait_for("candles", lambda: len(recorded(root)) >= WARMUP_CANDLES + 10, lambda: exited(first))
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        at_kill = recorded(root)
        wait_for("candles closing meanwhile", lambda: fake.clock.now() >= at_kill[-1].open_time + 20 * STEP,
                 lambda: None)
        second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            assert second.stdout is not None
            base = second.stdout.readline().removeprefix("dashboard: ").strip().rstrip("/")
            wait_for("the back-fill", lambda: len(recorded(root)) >= len(at_kill) + 30, lambda: exited(second))
            wait_for("the feed in /api/health", lambda: api_feed(base) == ("live", "binance"), lambda: exited(second))
            assert 'id="feed"' in httpx.get(base + "/").text, "the dashboard's feed badge"
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=DEADLINE) == 0, second.stderr.read() if second.stderr else ""
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        candles = recorded(root)
        times = [c.open_time for c in candles]
        assert times == sorted(set(times)), "nothing recorded twice, in order"
        assert all(b - a == STEP for a, b in zip(times, times[1:])), "none the exchange served is missing"
        assert all((c.open, c.high, c.low, c.close, c.volume) == served(fake, c.open_time) for c in candles)
        assert candles[len(at_kill)].open_time == at_kill[-1].open_time + STEP, "went on from the last recorded"
    for audit in ("verify", "reproduce"):
        done = subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--database", sqlite_url, audit],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=DEADLINE)
        assert done.returncode == 0, done.stdout + done.stderr


def api_feed(base: str) -> tuple[str | None, str | None]:
    agent = httpx.get(base + "/api/health", timeout=DEADLINE).json()["agent"]
    return agent["feed"], agent["feed_source"]


def exited(process: subprocess.Popen[str]) -> BaseException | None:
    if process.poll() is None:
        return None
    return RuntimeError(f"exit {process.returncode}: {process.stderr.read() if process.stderr else ''}")


# -- the synthetic demo's clock --------------------------------------------------------------


class DemoAgent(LiveAgent):
    """`run_live` on the synthetic demo market, as `tradeledger run` without an exchange runs it."""

    def __init__(self, root: Composition) -> None:
        _, settings = root.paced_settings(None)
        self.session = root.agent(settings)
        self.session.resume()
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self.main, args=(settings, None))


@pytest.mark.parametrize("speed", ["1", "6000"])
def test_the_demo_market_never_runs_ahead_of_the_wall_clock(sqlite_url: str, speed: str) -> None:
    settings = api_settings(sqlite_url, **{"trading.speed": speed, "agent.heartbeat_interval": "0.1"})
    with composed(settings) as root:
        with DemoAgent(root) as agent:
            wanted = WARMUP_CANDLES + (0 if speed == "1" else 40)
            wait_for("the demo's candles", lambda: len(recorded(root)) >= wanted, lambda: agent.error)
            candles, now = recorded(root), datetime.now(UTC)
            assert all(c.open_time + STEP <= now for c in candles), "a candle recorded before it closed"
            if speed == "1":  # the warm-up at once, then one candle per 5 minutes: none more by now
                assert len(candles) == WARMUP_CANDLES and candles[-1].open_time + STEP > now - STEP
            wait_for("a heartbeat", lambda: events(root, AgentRun.Heartbeat), lambda: agent.error)
        (source,) = {b.feed_source for b in events(root, AgentRun.Heartbeat)}
        assert source == ("SYNTHETIC" if speed == "1" else "SYNTHETIC 6000x")


def test_a_feed_outage_beyond_the_limit_alerts_once_and_its_end_alerts_once(sqlite_url: str) -> None:
    """Heartbeats of a running agent whose feed goes down and comes back, through the health rows, the
    alert watcher and the Telegram outbox."""
    settings = api_settings(sqlite_url, **{"agent.heartbeat_interval": "60"})
    with composed(settings) as root:
        root.migrate()
        now = datetime.now(UTC)
        run = AgentRun.start(key="feed-test", version="t", host="h", pid=1, config_digest="d", components=("t",),
                             model="m", decision_config={}, at=now)
        last = now - 20 * STEP
        beats = [("live", 10.0), ("down", 1200.0), ("down", 1300.0), ("lagging", 40.0), ("live", 5.0)]
        outbox = Outbox(root.engine, [CHAT])
        outbox.register_chats(head=root.feed.head(), at=now)
        watcher = AlertWatcher(root.engine, outbox.known, heartbeat_interval=60.0, stuck_after=120.0)
        for state, lag in beats:
            run.beat(at=datetime.now(UTC), candles_processed=1, feed_lag=lag, feed_source="binance",
                     feed_state=state, last_candle_at=last, reconnects=0 if state == "down" else 1)
            root.feed.append(run.collect_events())
            root.runner().catch_up()
            assert root.health.report().agent.feed == state
            outbox.add(watcher.check(now=datetime.now(UTC), head=root.feed.head()), at=datetime.now(UTC))
        kinds = [r.kind for r in outbox.rows() if r.kind.startswith("feed")]
        assert kinds == ["feed_down", "feed_recovered"], "one alert per outage, one for its end"
        down = next(r for r in outbox.rows() if r.kind == "feed_down")
        assert "binance is DOWN" in down.text
