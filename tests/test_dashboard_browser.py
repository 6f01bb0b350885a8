"""The dashboard in Debian's headless chromium against the embedded system while the agent trades.

New fills and signals must appear without a reload, and after the socket drops the page must
catch up (`?after=`) with no fill shown twice. Any script error fails the test: the script reads
API fields only through the contract (`val()` throws on an undeclared one). The screenshot is
saved to test-artifacts/dashboard.png.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import pytest

from tradeledger.adapters.services.trading import run_live
from tradeledger.projections.runner import ProjectionRunner
from tests.composing import composed
from tests.apisupport import api_settings, serving
from tests.browser import CHROMIUM, Page, open_page
from tests.conftest import ROOT

SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
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


def test_dashboard_updates_live_and_catches_up_after_a_reconnect(trading_system: str) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/test.sh installs Debian's chromium package)")
        pytest.skip("chromium is not installed: apt-get install chromium")
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
