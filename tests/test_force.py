"""Trades you can force, and entries you can stop: operator commands the agent applies between candles.

The agent trades a real file in process (tests/agents.py); a command issued while it holds the lease is
pending until its next tick, which applies it before that candle's fills, so a forced order fills at
that candle's open. Every history here must reproduce: the replay decides each forced trade again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from uuid import UUID

import httpx
import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.database import upgrade
from tradeledger.adapters.lease import lease_for
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.control import Control, Outcome
from tradeledger.adapters.services.ports import scan, utcnow
from tradeledger.adapters.services.reproduce import Replay
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.domain.account import Account
from tradeledger.domain.values import Candle, Side
from tests.agents import resumed
from tests.apisupport import TOKEN
from tests.browser import CHROMIUM, open_page
from tests.conftest import ROOT
from tests.forcing import DEADLINE, Live, forced_exit_filled, live_holding
from tests.test_agent import ETH, open_log, settings_for


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def eth_candles() -> list[Candle]:
    return load_candles(ETH).candles


def issue(log, url: str, command: str, symbol: str = "", *, reason: str = "operator", wait: float = 0.0,
          by: str = "api") -> Outcome:
    """As the API issues it (wait=0 while the agent holds the lease: answered at once, pending)."""
    control = Control(log, lambda: lease_for(url), "paper", wait=wait)
    return control.issue(command, reason=reason, by=by, channel="test", at=utcnow(), symbol=symbol)


class Run:
    """One agent on the ETH file, ticking a candle per append, and what it recorded."""

    def __init__(self, url: str, candles: list[Candle], **settings: str) -> None:
        upgrade(url)
        self.url = url
        self.log = open_log(url)
        self.agent: TradingSession = resumed(self.log, settings_for(url, **settings))
        self.agent.start(("test",))
        self.feed: Iterator[Candle] = iter(candles)

    @property
    def account(self) -> Account:
        assert self.agent.account is not None
        return self.agent.account

    def tick(self) -> Candle:
        candle = next(self.feed)
        self.agent.tick(candle)
        self.agent.flush()
        return candle

    def until(self, done: Callable[[Account], bool]) -> None:
        self.tick()
        while not done(self.account):
            self.tick()

    def after(self, position: int, *types: type) -> list:
        return [r.event for r in scan(self.log, after=position, types=types)]

    def reproduces(self) -> bool:
        self.agent.stop("test")
        return main(["--database", self.url, "reproduce"]) == 0


def holding(account: Account) -> bool:
    return bool(account.positions) and not account.orders


def flat(account: Account) -> bool:
    return not account.positions and not account.orders


def test_force_exit_sells_the_position_at_the_next_candles_open_recording_who_asked(sqlite_url, eth_candles):
    run = Run(sqlite_url, eth_candles)
    run.until(holding)
    (symbol, quantity), = [(s, p.quantity) for s, p in run.account.positions.items()]
    outcome = issue(run.log, sqlite_url, "force_exit", symbol, reason="take it off")
    assert outcome.status == "pending"

    candle = run.tick()

    placed = run.after(outcome.issued, Account.OrderPlaced)[0]
    assert (placed.side, placed.quantity, placed.exit_reason) == (Side.SELL, quantity, "force_exit")
    assert placed.reason == "force_exit by api via test: take it off"
    applied = run.after(outcome.issued, Account.CommandApplied)[0]
    assert applied.command_id == outcome.command_id
    filled = [f for f in run.after(outcome.issued, Account.OrderFilled) if f.order_id == placed.order_id][0]
    assert filled.filled_at == candle.open_time and filled.basis.open == candle.open
    assert symbol not in run.account.positions
    assert run.reproduces()


def test_force_exit_takes_over_a_resting_limit_exit(sqlite_url, eth_candles):
    # A limit sell 5 % above the close rests unfilled: forcing the exit must not wait for it.
    run = Run(sqlite_url, eth_candles, **{"trading.exit_order": "limit", "trading.limit_offset_bps": "500"})
    run.until(lambda a: any(o.side is Side.SELL and o.limit_price is not None for o in a.orders.values()))
    (resting,) = [o for o in run.account.orders.values() if o.side is Side.SELL]
    outcome = issue(run.log, sqlite_url, "force_exit", resting.symbol)

    candle = run.tick()

    cancelled = [e for e in run.after(outcome.issued, Account.OrderCancelled) if e.order_id == resting.order_id]
    assert cancelled and "the resting limit exit is dropped" in cancelled[0].reason
    placed = run.after(outcome.issued, Account.OrderPlaced)[0]
    assert (placed.exit_reason, placed.limit_price, placed.quantity) == ("force_exit", None, resting.quantity)
    filled = [f for f in run.after(outcome.issued, Account.OrderFilled) if f.order_id == placed.order_id]
    assert filled[0].filled_at == candle.open_time and resting.symbol not in run.account.positions
    assert run.reproduces()


def test_force_exit_all_and_force_enter_and_their_refusals(sqlite_url, eth_candles):
    run = Run(sqlite_url, eth_candles)
    run.until(flat)
    nothing = issue(run.log, sqlite_url, "force_exit", "all")
    unknown = issue(run.log, sqlite_url, "force_enter", "DOGE/BTC")
    enter = issue(run.log, sqlite_url, "force_enter", "ETH/BTC", reason="my hunch")
    again = issue(run.log, sqlite_url, "force_enter", "ETH/BTC")
    candle = run.tick()

    refused = {e.command_id: e.reason for e in run.after(nothing.issued, Account.CommandRefused)}
    assert refused[nothing.command_id].startswith("nothing to exit")
    assert refused[unknown.command_id].startswith("unknown symbol DOGE/BTC")
    assert refused[again.command_id].startswith("already in a position in ETH/BTC")
    buy = run.after(enter.issued, Account.OrderPlaced)[0]
    assert buy.side is Side.BUY and buy.reason == "force_enter by api via test: my hunch"
    assert buy.basis.sizing is not None and buy.basis.sizing.position_size == settings_for(sqlite_url).trading.position_size
    assert run.account.position("ETH/BTC").quantity == buy.quantity
    assert [f.filled_at for f in run.after(enter.issued, Account.OrderFilled)][:1] == [candle.open_time]

    out = issue(run.log, sqlite_url, "force_exit", "all", by="telegram:1", reason="")
    run.tick()
    sell = run.after(out.issued, Account.OrderPlaced)[0]
    assert (sell.side, sell.exit_reason, sell.reason) == (Side.SELL, "force_exit", "force_exit by telegram:1 via test")
    assert run.reproduces()


def test_stop_entry_rejects_entries_while_exits_still_happen(sqlite_url, eth_candles):
    run = Run(sqlite_url, eth_candles)
    run.until(holding)
    stop = issue(run.log, sqlite_url, "stop_entry", reason="maintenance")
    twice = issue(run.log, sqlite_url, "stop_entry")
    run.tick()
    assert run.account.entries_stopped
    run.until(lambda a: any(e.rule == "entries_stopped" for e in run.after(stop.issued, Account.OrderRejected)))

    sells = [e for e in run.after(stop.issued, Account.OrderPlaced) if e.side is Side.SELL]
    buys = [e for e in run.after(stop.issued, Account.OrderPlaced) if e.side is Side.BUY]
    assert sells and not buys  # the position was closed by its exit signal; the next entry rejected
    refused = run.after(stop.issued, Account.CommandRefused)
    assert [(e.command_id, e.reason) for e in refused] == [(twice.command_id, "entries are already stopped")]
    assert issue(run.log, sqlite_url, "force_enter", "ETH/BTC").status == "pending"

    start = issue(run.log, sqlite_url, "start_entry", reason="done")
    run.until(lambda a: bool(a.positions))
    switched = run.after(stop.issued, Account.EntriesSwitched)
    assert [(e.stopped, e.by, e.reason) for e in switched] == [(True, "api", "maintenance"), (False, "api", "done")]
    assert run.after(start.issued, Account.OrderPlaced)[0].side is Side.BUY
    assert run.reproduces()


def test_stop_entry_keeps_the_stop_loss_working(sqlite_url, eth_candles):
    run = Run(sqlite_url, eth_candles, **{"exits.stoploss_percent": "0.3"})
    run.until(holding)
    stop = issue(run.log, sqlite_url, "stop_entry", reason="stops only")
    run.until(lambda a: not a.positions and run.after(stop.issued, Account.EntriesSwitched))
    placed = run.after(stop.issued, Account.OrderPlaced)
    assert [(e.side, e.exit_reason) for e in placed] == [(Side.SELL, "stoploss")]
    run.until(lambda a: bool(run.after(stop.issued, Account.OrderRejected)))
    assert {e.rule for e in run.after(stop.issued, Account.OrderRejected)} == {"entries_stopped"}
    assert not [e for e in run.after(stop.issued, Account.OrderPlaced) if e.side is Side.BUY]
    assert run.reproduces()


def test_without_an_agent_forced_trades_are_refused_and_the_entry_switch_applied(sqlite_url, eth_candles):
    run = Run(sqlite_url, eth_candles)
    run.until(holding)
    run.agent.stop("test")
    forced = issue(run.log, sqlite_url, "force_exit", "all", wait=5)
    assert forced.status == "refused" and forced.reason.startswith("no agent is running")
    stopped = issue(run.log, sqlite_url, "stop_entry", wait=5)
    assert stopped.status == "applied"
    switched = [r for r in scan(run.log, after=stopped.issued) if r.position == stopped.position]
    assert isinstance(switched[0].event, Account.EntriesSwitched)
    assert main(["--database", sqlite_url, "reproduce"]) == 0


def test_a_replay_decides_a_forced_trade_again(sqlite_url, eth_candles):
    """The forced order is produced by the replay at the CommandApplied (not copied from the log)."""
    run = Run(sqlite_url, eth_candles)
    run.until(holding)
    issue(run.log, sqlite_url, "force_exit", "ETH/BTC")
    run.tick()
    run.agent.stop("test")
    replay = Replay(run.agent.trader_factory())
    for recorded in scan(run.log):
        event = recorded.event
        if isinstance(event, Account.OrderPlaced) and event.exit_reason == "force_exit":
            assert replay.expected[event.originator_id][0].exit_reason == "force_exit"
        replay.apply(event, recorded.position)
    assert replay.divergence is None


def test_force_exit_over_the_api_closes_the_live_position_at_the_next_open(store_url):
    with live_holding(store_url) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        body = {"symbol": live.held.symbol, "reason": "from the API"}
        assert http.post("/api/control/force-exit", json=body).status_code == 401
        bad = http.post("/api/control/force-enter", json={"symbol": "all"}, headers=AUTH)
        assert bad.status_code == 400 and "symbol" in bad.text
        response = http.post("/api/control/force-exit", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        result = response.json()
        placed, _ = forced_exit_filled(live, UUID(result["command_id"]), "api")
        assert (result["action"], result["symbol"], result["by"]) == ("force_exit", "ETH/BTC", "api")
        assert placed.reason == "force_exit by api via http: from the API"
        again = http.post("/api/control/force-exit", json={"symbol": "all"}, headers=AUTH)
        assert again.status_code == 409 and "nothing to exit" in again.json()["detail"]
        stopped = http.post("/api/control/stop-entry", json={"reason": "calm down"}, headers=AUTH)
        assert stopped.status_code == 200 and stopped.json()["action"] == "stop_entry"
        refused = http.post("/api/control/force-enter", json={"symbol": "ETH/BTC"}, headers=AUTH)
        assert refused.status_code == 409 and "entries are stopped" in refused.json()["detail"]
        started = http.post("/api/control/start-entry", json={"reason": "go"}, headers=AUTH)
        assert started.status_code == 200
        entered = http.post("/api/control/force-enter", json={"symbol": "ETH/BTC", "reason": "back in"}, headers=AUTH)
        assert entered.status_code == 200, entered.text
    assert main(["--database", store_url, "reproduce"]) == 0


SCREENSHOT = ROOT / "test-artifacts" / "dashboard-controls.png"
EXIT_BUTTON = "document.querySelector('#position-exits button[data-symbol=\"ETH/BTC\"]')"
RESULT = "document.getElementById('control-result')"


def test_force_exit_from_the_dashboard_button_asks_the_token_once(sqlite_url):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    with live_holding(sqlite_url) as live:
        placed = asyncio.run(click_force_exit(live))
    assert placed.reason == "force_exit by api via http: dashboard drill"


async def click_force_exit(live: Live) -> Account.OrderPlaced:
    async with open_page(live.url + "/") as page:
        await page.wait_for(f"{EXIT_BUTTON} !== null", DEADLINE, "the position's force exit button")
        await page.evaluate("document.getElementById('control-reason').value = 'dashboard drill'")
        await page.evaluate(f"{EXIT_BUTTON}.click()")
        await page.wait_for("!document.getElementById('token-form').hidden", DEADLINE, "the token form")
        await page.evaluate(f"document.querySelector('#token-form input').value = {TOKEN!r}")
        await page.evaluate("document.querySelector('#token-form button').click()")
        await page.wait_for(f"{RESULT}.textContent.startsWith('force_exit ETH/BTC: applied')", DEADLINE,
                            "the applied force exit")
        command_id = await page.evaluate(f"{RESULT}.dataset.commandId")
        placed, _ = await asyncio.to_thread(forced_exit_filled, live, UUID(command_id), "api")
        await page.wait_for(f"{EXIT_BUTTON} === null", DEADLINE, "the closed position's button to go")
        await page.evaluate("document.querySelector('button[data-action=\"stop-entry\"]').click()")
        await page.wait_for(f"{RESULT}.textContent.startsWith('stop_entry: applied')", DEADLINE, "stop entry")
        assert await page.evaluate("document.getElementById('token-form').hidden"), "the token was asked twice"
        live.step()  # a candle later the dashboard has re-read the portfolio, which shows the switch
        await page.wait_for("document.getElementById('entries').textContent.startsWith('entries: STOPPED')",
                            DEADLINE, "the stopped entries shown")
        await page.screenshot(SCREENSHOT)
        assert page.errors == []
        return placed
