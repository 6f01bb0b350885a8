"""The HTML report (`backtest --report FILE.html`) in Debian's headless chromium, offline.

A backtest of real ETH/BTC candles writes the report; the page must draw, per pair, a candlestick
with a marker at every fill's time and price exactly as the store recorded them (read back from the
plotly graph's own data), the hover text must carry quantity and reason, nothing may be fetched
(the file is self-contained), and no script may fail. The screenshot is saved to
test-artifacts/report.png. Recorded text cannot break out of the inlined scripts, and 100,000
candles stay a sane size (columnar JSON).
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from tradeledger.adapters import report_html
from tradeledger.adapters.services.charts import FillPoint
from tradeledger.projections.models import MODELS_PROJECTION
from tradeledger.projections.models_view import scoreboard
from tradeledger.projections.replay import ReadModels, pages
from tradeledger.settings import load_settings
from tests.backtested import ETH, cli
from tests.browser import CHROMIUM, Page, open_page
from tests.composing import composed
from tests.conftest import ROOT

SCREENSHOT = ROOT / "test-artifacts" / "report.png"
DEADLINE = 60  # seconds before a wait is declared hung
TIMERANGE = "20180115-20180118"
PLOTTED = """(() => { const d = document.getElementById('pair-0'); const t = (m) => d.data.find(x => x.meta === m);
  return {symbol: d.dataset.symbol, candles: t('candles').x.length, x: t('fills').x, y: t('fills').y,
          hover: t('fills').customdata}; })()"""


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("report")
    url, out = f"sqlite:///{folder / 'ledger.sqlite'}", folder / "report.html"
    code, _ = cli(url, "backtest", "--data", str(ETH), "--predictor", "sma_cross", "--timerange", TIMERANGE,
                  "--report", str(out))
    assert code == 0
    return url, out


def recorded_fills(url: str) -> list[tuple[int, float, str, str]]:
    """(epoch ms, price, side, quantity) of every OrderFilled in the store, in log order."""
    with composed(load_settings(overrides={"database.url": url}, environ={})) as container:
        filled = container.feed.read(0, 100_000, ["OrderFilled"])
        return [(int(r.event.timestamp.timestamp() * 1000), float(r.event.price), r.event.side.value,
                 format(r.event.quantity, "f")) for r in filled]


def needs_chromium() -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/test.sh installs Debian's chromium package)")
        pytest.skip("chromium is not installed: apt-get install chromium")


def test_the_report_marks_every_fill_at_its_time_and_price(backtested: tuple[str, Path]) -> None:
    needs_chromium()
    url, report = backtested
    fills = recorded_fills(url)
    assert len(fills) > 10, "the backtest should trade"
    asyncio.run(check_report(report, fills))


async def check_report(report: Path, fills: list[tuple[int, float, str, str]]) -> None:
    async with open_page(report.as_uri()) as page:
        await page.wait_for("document.querySelectorAll('.js-plotly-plot').length === 2", DEADLINE, "both charts")
        plotted = await page.evaluate(PLOTTED)
        assert plotted["symbol"] == "ETH/BTC"
        assert plotted["candles"] > 100
        assert list(zip(plotted["x"], plotted["y"])) == [(at, price) for at, price, _, _ in fills]
        assert [(side, quantity) for side, quantity, _, _ in plotted["hover"]] == \
               [(side, quantity) for _, _, side, quantity in fills]
        assert all(reason and reason != "–" for _, _, reason, _ in plotted["hover"]), "every fill says why"
        await check_offline(page)
        await page.screenshot(SCREENSHOT)
        assert page.errors == []


async def check_offline(page: Page) -> None:
    assert await page.evaluate("document.querySelectorAll('[src], link[href]').length") == 0
    assert await page.evaluate("performance.getEntriesByType('resource').length") == 0, "the report fetched something"
    curves = await page.evaluate("document.getElementById('curves').data.map(t => [t.meta, t.x.length])")
    assert [meta for meta, _ in curves] == ["equity", "drawdown"] and curves[0][1] > 100


def test_the_metrics_and_trades_tables_show_every_field(backtested: tuple[str, Path]) -> None:
    html = backtested[1].read_text()
    for figure in ("return_percent", "sharpe", "profit_factor", "max_drawdown percent", "exposure_percent"):
        assert f'data-metric="{figure}"' in html
    rows = re.search(r'<table id="trades" data-rows="(\d+)"', html)
    assert rows and int(rows.group(1)) > 5
    assert "<th>exit reason</th>" in html


def test_the_report_shows_the_model_scoreboard_of_the_ensemble(tmp_path: Path) -> None:
    url, out = f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path / "report.html"
    code, _ = cli(url, "backtest", "--data", str(ETH), "--predictor", "ensemble", "--timerange", TIMERANGE,
                  "--report", str(out))
    assert code == 0
    with composed(load_settings(overrides={"database.url": url}, environ={})) as container:
        folded = ReadModels((MODELS_PROJECTION,))
        for page in pages(container.feed):
            folded.apply(page)
        expected = scoreboard(folded.tables.rows).models
    table = re.search(r'<table id="models".*?</table>', out.read_text(), re.S)
    assert table is not None
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)]
    shown = {cells[0]: cells for cells in rows if cells}
    assert set(shown) == {"ensemble", "logistic", "hoeffding_tree", "sma_cross"} == {m.model for m in expected}
    for model in expected:
        assert shown[model.model][2:4] == [str(model.calls), str(model.hits)]
        assert shown[model.model][4] == report_html.shown("hit_rate", model.hit_rate)


class Figures(msgspec.Struct, kw_only=True):
    quote_currency: str
    return_percent: float


def stand_in(candles: int, reason: str = "signal", title: str = "report") -> SimpleNamespace:
    """A report with `candles` 5m candles of one pair and one fill (the metrics' own Report has the same fields)."""
    start = datetime(2018, 1, 1, tzinfo=UTC)
    points = [SimpleNamespace(time=start + timedelta(minutes=5 * i), open=Decimal("0.09012345"),
                              high=Decimal("0.09112345"), low=Decimal("0.08912345"), close=Decimal("0.09054321"))
              for i in range(candles)]
    fill = FillPoint(position=7, symbol="ETH/BTC", time=start, side="buy", price=Decimal("0.09012345"),
                     quantity=Decimal("1"), reason=reason)
    return SimpleNamespace(title=title, metrics=Figures(quote_currency="BTC", return_percent=1.5),
                           candles={"ETH/BTC": points}, trades=[], fills=[fill], models=None,
                           equity=[SimpleNamespace(time=start, equity=Decimal(1), drawdown_percent=0.0)])


def test_recorded_text_cannot_leave_the_inlined_scripts() -> None:
    markup = '</script><script>alert("x")</script>'
    html = report_html.render(stand_in(3, reason=markup, title=markup))
    assert html.count("</script>") == 4, "the data, plotly.js, chart.js and the drawing call; nothing injected"
    assert markup not in html


def test_a_hundred_thousand_candles_stay_a_sane_size() -> None:
    html = report_html.render(stand_in(100_000))
    per_candle = (len(html.encode()) - len(report_html.plotly_js().encode())) / 100_000
    print(f"100,000 candles: {len(html.encode()) / 1e6:.1f} MB, {per_candle:.0f} bytes a candle beyond plotly.js")
    assert per_candle < 80  # an object per candle would cost about twice that
