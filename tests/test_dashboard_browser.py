"""The dashboard in Debian's headless chromium against the embedded system while the agent trades.

New fills and signals must appear without a reload, and after the socket drops the page must
catch up (`?after=`) with no fill shown twice. Any script error fails the test: the script reads
API fields only through the contract (`val()` throws on an undeclared one). The screenshot is
saved to test-artifacts/dashboard.png.

On a real file replayed as if live (paced under a fixed wall clock, as tests/forcing.py), the candle
chart must mark a new fill at its recorded time and price without a reload (read back from the plotly
graph's data), and the header must show the log's head even before any message arrives
(test-artifacts/dashboard-candles.png).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import pytest

from tradeledger.adapters.composition import Composition
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.trading import run_live
from tradeledger.projections.runner import ProjectionRunner
from tests.composing import composed
from tests.apisupport import api_settings, serving
from tests.browser import CHROMIUM, Page, open_page
from tests.conftest import CANDLES, ROOT

SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
CANDLE_SCREENSHOT = ROOT / "test-artifacts" / "dashboard-candles.png"
DATA = CANDLES / "ETH_BTC-5m.csv"
CAUGHT_UP = 300  # candles replayed at once before the wall clock; every later one waits PACE seconds
PACE = "0.05"
DEADLINE = 60  # seconds before a wait is declared hung; no assertion depends on timing

FILL_POSITIONS = "[...document.querySelectorAll('#fills tr[data-position]')].map(r => +r.dataset.position)"
SIGNAL_POSITION = "Math.max(0, ...[...document.querySelectorAll('#signals tr[data-position]')]" \
                  ".map(r => +r.dataset.position))"


@pytest.fixture
def trading_system(sqlite_url: str) -> Iterator[str]:
    """What `tradeledger run` runs, in this process: projections, the paced agent, the API."""
    settings = api_settings(sqlite_url, **{"trading.speed": "6000"})
    with composed(settings) as container:
        runner = ProjectionRunner(container.feed, container.engine, poll_interval=0.05)
        runner.start()
        stop = threading.Event()
        session = container.agent(settings)
        session.resume()
        agent = threading.Thread(target=run_live, args=(session, settings, stop),
                                 kwargs={"data": None, "components": ("agent", "projections", "api")})
        agent.start()
        try:
            with serving(container) as url:
                yield url
        finally:
            stop.set()
            agent.join()
            runner.stop()


def needs_chromium() -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/test.sh installs Debian's chromium package)")
        pytest.skip("chromium is not installed: apt-get install chromium")


def test_dashboard_updates_live_and_catches_up_after_a_reconnect(trading_system: str) -> None:
    needs_chromium()
    asyncio.run(drive(trading_system + "/"))


async def drive(url: str) -> None:
    async with open_page(url) as page:
        await page.wait_for("document.getElementById('link').textContent === 'live'", DEADLINE, "a live socket")
        await page.evaluate("window.loadedOnce = true")  # gone if the page reloads
        first_fills = await page.wait_for(f"{FILL_POSITIONS}.length >= 1 && {FILL_POSITIONS}", DEADLINE, "a fill")
        first_signal = await page.wait_for(SIGNAL_POSITION, DEADLINE, "a signal")
        await page.wait_for(f"Math.max(...{FILL_POSITIONS}) > {max(first_fills)}", DEADLINE, "a new fill")
        await page.wait_for(f"{SIGNAL_POSITION} > {first_signal}", DEADLINE, "a newer signal")
        await page.wait_for("+document.getElementById('equity').dataset.points > 1", DEADLINE, "the equity curve")
        assert await page.evaluate("window.loadedOnce === true"), "the page reloaded"

        before = await page.evaluate(f"Math.max(...{FILL_POSITIONS})")
        await page.evaluate("dashboard.socket.close()")
        await page.wait_for("document.getElementById('link').textContent === 'reconnecting'", DEADLINE,
                            "the dropped socket")
        await page.wait_for("document.getElementById('link').textContent === 'live'", DEADLINE, "the reconnect")
        await page.wait_for(f"Math.max(...{FILL_POSITIONS}) > {before}", DEADLINE, "a fill after the reconnect")
        fills = await page.evaluate(FILL_POSITIONS)
        assert fills == sorted(set(fills), reverse=True), "a fill is shown twice or out of order"
        assert await page.evaluate("window.loadedOnce === true"), "the page reloaded"
        await check_panels(page)
        await page.screenshot(SCREENSHOT)
        assert page.errors == []


async def check_panels(page: Page) -> None:
    for panel in ("summary", "positions", "orders", "health", "activity"):
        assert await page.evaluate(f"document.getElementById('{panel}').children.length > 0"), panel
    assert await page.evaluate("document.querySelector('#health').textContent.includes('projection portfolio')")
    assert await page.evaluate("document.querySelectorAll('#activity li').length") > 5


@pytest.fixture
def paced_file(sqlite_url: str) -> Iterator[tuple[str, Composition]]:
    """`tradeledger run --data ETH_BTC-5m.csv` in this process, its wall clock fixed at candle CAUGHT_UP's close."""
    candles = load_candles(DATA).candles
    settings = api_settings(sqlite_url, **{"trading.update_interval": PACE})
    with composed(settings, clock=lambda: candles[CAUGHT_UP].close_time) as container:
        _, paced = container.paced_settings(str(DATA))
        runner = ProjectionRunner(container.feed, container.engine, poll_interval=0.05)
        runner.start()
        stop = threading.Event()
        session = container.agent(paced)
        session.resume()
        agent = threading.Thread(target=run_live, args=(session, paced, stop),
                                 kwargs={"data": str(DATA), "components": ("agent", "projections", "api")})
        agent.start()
        try:
            with serving(container) as url:
                yield url, container
        finally:
            stop.set()
            agent.join()
            runner.stop()


TRACE = "document.getElementById('candles').data.find(t => t.meta === '{}')"
MARKERS = f"(() => {{ const f = {TRACE.format('fills')}; " \
          "return f ? f.x.map((x, i) => [x, f.y[i], f.customdata[i][2]]) : []; })()"


def recorded_fills(container: Composition) -> set[tuple[int, float]]:
    return {(int(r.event.timestamp.timestamp() * 1000), float(r.event.price))
            for r in container.feed.read(0, 100_000, ["OrderFilled"])}


def test_the_candle_chart_marks_a_new_fill_without_a_reload(paced_file: tuple[str, Composition]) -> None:
    needs_chromium()
    asyncio.run(watch_a_fill(*paced_file))


async def watch_a_fill(url: str, container: Composition) -> None:
    async with open_page(url + "/") as page:
        await page.wait_for("document.getElementById('link').textContent === 'live'", DEADLINE, "a live socket")
        await page.wait_for(f"document.getElementById('candles').data && {TRACE.format('candles')}.x.length > 100",
                            DEADLINE, "the candles of ETH/BTC")
        await page.evaluate("window.loadedOnce = true")
        before = len(await page.evaluate(MARKERS))
        await page.wait_for(f"{MARKERS}.length > {before}", DEADLINE, "a new fill marked on the chart")
        markers = await page.evaluate(MARKERS)
        candle_times = set(await page.evaluate(f"{TRACE.format('candles')}.x"))
        recorded = recorded_fills(container)
        assert {(x, y) for x, y, _ in markers} <= recorded, "a marker at a time or price no fill has"
        assert all(x in candle_times and reason not in ("", "–") for x, _, reason in markers[before:]), markers
        await page.wait_for("!document.getElementById('metrics-panel').hidden && "
                            "document.querySelector('#metrics tr[data-metric=trades]') !== null", DEADLINE,
                            "the metrics panel")
        for chart in ("candles", "equity"):
            assert await page.evaluate(f"document.getElementById('{chart}')._fullLayout.xaxis.type") == "date"
        assert await page.evaluate("window.loadedOnce === true"), "the page reloaded"
        await page.screenshot(CANDLE_SCREENSHOT)
        assert page.errors == []


def test_the_header_shows_the_log_head_before_any_message(paced_file: tuple[str, Composition]) -> None:
    needs_chromium()
    asyncio.run(header_without_socket(paced_file[0]))


async def header_without_socket(url: str) -> None:
    async with open_page(url + "/") as page:
        # Reloaded with a socket that never opens: what the header shows comes from the REST snapshots.
        await page.send("Page.addScriptToEvaluateOnNewDocument",
                        source="window.socketless = true; window.WebSocket = class { close() {} };")
        await page.send("Page.reload")
        head = await page.wait_for("window.socketless && window.dashboard && dashboard.health && dashboard.health.head",
                                   DEADLINE, "the health snapshot")
        assert head > CAUGHT_UP
        assert await page.evaluate("document.getElementById('position').textContent") == f"position {head}"
