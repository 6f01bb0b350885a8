"""`tradeledger statement` (issue 12 point 3): a self-contained HTML statement of a real backtest whose figures,
read from the DOM in headless chromium, equal the portfolio read model; `--as-of` cuts as `replay --as-of`;
`--pdf` prints it with chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradeledger.adapters.database import upgrade
from tradeledger.adapters.eventstore import split_state
from tradeledger.adapters.services.statement import CURVE_POINTS, downsample, drawdown_curve
from tradeledger.adapters.statement_svg import line_chart
from tests.backtested import MARKUP_REASON, backtest_store, cli
from tests.browser import CHROMIUM, open_page
from tests.conftest import ROOT

AS_OF = "2018-01-12T06:00:00Z"
FIGURES = ("cash", "equity", "trade-count", "initial-balance", "gross-pnl", "fees", "net-pnl", "cash-computed",
           "trial-balance-total", "verify", "reproduce", "cash-reconciles", "head-position", "cut-position")
SCREENSHOT = ROOT / "test-artifacts" / "statement.png"


def need_chromium() -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/test.sh installs Debian's chromium package)")
        pytest.skip("chromium is not installed: apt-get install chromium")


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('statement') / 'ledger.sqlite'}"
    backtest_store(url, 3000)
    return url


def portfolio(url: str, *cut: str) -> dict[str, Any]:
    code, out = cli(url, "replay", *cut, "--json")
    assert code == 0
    return json.loads(out)


def written(url: str, out: Path, *args: str) -> str:
    code, _ = cli(url, "statement", "--out", str(out), *args)
    assert code == 0
    return out.read_text(encoding="utf-8")


def test_the_statement_is_self_contained_and_escapes_recorded_text(backtested: str, tmp_path: Path) -> None:
    html = written(backtested, tmp_path / "statement.html")
    assert not re.search(r"https?:|ftp:|\b(src|href)=|<script|<link|<img|<iframe|@import|url\(", html, re.IGNORECASE), \
        "no URL, script, stylesheet link or image: the document stands alone"
    assert MARKUP_REASON not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; " in html
    assert html.count("<svg") == 2 and "no signed checkpoint" in html
    for heading in ("Store", "Latest signed checkpoint", "Checks", "Account summary", "Equity and drawdown",
                    "Reconciliation of cash", "Trial balance", "Daily PnL", "Trades", "Halts and resumes",
                    "Rejected orders"):
        assert f"<h2>{heading}</h2>" in html


def test_the_statement_in_chromium_shows_the_read_models_figures(backtested: str, tmp_path: Path) -> None:
    need_chromium()
    statement = tmp_path / "statement.html"
    written(backtested, statement)
    shown = asyncio.run(read_figures(statement, SCREENSHOT))
    expected = portfolio(backtested, "--position", shown["head-position"])
    assert Decimal(shown["cash"]) == Decimal(expected["account"]["cash"])
    assert Decimal(shown["equity"]) == Decimal(expected["account"]["equity"])
    assert int(shown["trade-count"]) == len(expected["trades"]) == shown["trades-rows"] > 0
    assert Decimal(shown["net-pnl"]) == Decimal(shown["gross-pnl"]) - Decimal(shown["fees"])
    assert Decimal(shown["cash-computed"]) == Decimal(shown["cash"]) and shown["cash-reconciles"] == "true"
    assert Decimal(shown["trial-balance-total"]) == 0
    assert (shown["verify"], shown["reproduce"]) == ("ok", "ok")
    assert shown["halts-rows"] >= 2 and shown["charts"] == 2


def test_as_of_cuts_the_statement_as_replay_does(backtested: str, tmp_path: Path) -> None:
    html = written(backtested, tmp_path / "as-of.html", "--as-of", AS_OF)
    figures = dict(re.findall(r'<td id="([a-z-]+)" data-value="([^"]*)"', html))
    expected = portfolio(backtested, "--as-of", AS_OF)
    assert Decimal(figures["cash"]) == Decimal(expected["account"]["cash"])
    assert Decimal(figures["equity"]) == Decimal(expected["account"]["equity"])
    assert int(figures["trade-count"]) == len(expected["trades"])
    assert int(figures["cut-position"]) < int(figures["head-position"])
    assert "<td>auditor</td>" not in html, "the operator's halt, after the cut, is not in it"
    assert "<td>auditor</td>" in written(backtested, tmp_path / "all.html")


def test_pdf_is_printed_with_chromium(backtested: str, tmp_path: Path) -> None:
    need_chromium()
    html = tmp_path / "statement.html"
    code, out = cli(backtested, "statement", "--out", str(html), "--pdf", "--json")
    assert code == 0 and json.loads(out)["pdf"] == str(html.with_suffix(".pdf"))
    pdf = html.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000


def test_pdf_without_chromium_is_a_one_line_error(backtested: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on it
    html = tmp_path / "statement.html"
    code, _ = cli(backtested, "statement", "--out", str(html), "--pdf")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("tradeledger statement: --pdf needs")
    assert not html.exists(), "nothing is written when the PDF cannot be"


async def read_figures(statement: Path, screenshot: Path) -> dict[str, Any]:
    async with open_page(statement.resolve().as_uri()) as page:
        figures = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('td[id][data-value], p[id][data-value]')]"
            ".map(e => [e.id, e.dataset.value]))")
        counts = await page.evaluate(
            "({trades: document.querySelectorAll('#trades tbody tr').length,"
            " halts: document.querySelectorAll('#halts tbody tr').length,"
            " charts: [...document.querySelectorAll('svg.chart polyline')].filter(l => l.getBBox().width > 0).length})")
        await page.screenshot(screenshot)
        assert not page.errors, page.errors
    assert set(FIGURES) <= set(figures), set(FIGURES) - set(figures)
    return {**figures, "trades-rows": counts["trades"], "halts-rows": counts["halts"], "charts": counts["charts"]}


def test_a_store_without_the_account_is_a_one_line_error(sqlite_url: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    upgrade(sqlite_url)  # `statement` only reads: the store must exist
    code, _ = cli(sqlite_url, "statement", "--out", str(tmp_path / "s.html"))
    err = capsys.readouterr().err
    assert code == 2 and err == "tradeledger statement: account 'paper' has no events up to then\n"
    assert not (tmp_path / "s.html").exists()


def test_the_curves_are_downsampled_keeping_every_trough() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    equity = [Decimal(100) + Decimal(i % 97) for i in range(50_000)]
    equity[31_337] = Decimal(1)  # the one deep trough
    curve = drawdown_curve((start + timedelta(minutes=5 * i), e) for i, e in enumerate(equity))
    kept = downsample(curve)
    assert len(kept) <= CURVE_POINTS + 1 and kept[0] == curve[0] and kept[-1] == curve[-1]
    assert [p.time for p in kept] == sorted({p.time for p in kept}), "in time order, no point twice"
    assert min(p.equity for p in kept) == 1 and max(p.drawdown_percent for p in kept) == max(
        p.drawdown_percent for p in curve)
    svg = line_chart([(p.time, p.equity) for p in kept], title="<Equity>", unit="BTC", chart_id="c")
    assert "<Equity>" not in svg and "&lt;Equity&gt;" in svg and f'data-points="{len(kept)}"' in svg


def test_a_tampered_store_gets_a_statement_that_says_so(backtested: str, tmp_path: Path) -> None:
    path = tmp_path / "tampered.sqlite"
    shutil.copy(backtested.removeprefix("sqlite:///"), path)
    with sqlite3.connect(path) as db:  # one fill's fee, edited without recomputing the chain
        rowid, state = db.execute("SELECT rowid, state FROM stored_events WHERE topic LIKE '%OrderFilled' "
                                  "ORDER BY rowid LIMIT 1").fetchone()
        digest, payload = split_state(state)
        edited = re.sub(rb'"fee":"0\.0', b'"fee":"0.1', payload, count=1)
        assert edited != payload
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (digest + edited, rowid))
    html = tmp_path / "statement.html"
    code, _ = cli(f"sqlite:///{path}", "statement", "--out", str(html))
    figures = dict(re.findall(r'<td id="([a-z-]+)" data-value="([^"]*)"', html.read_text(encoding="utf-8")))
    assert code == 1 and figures["verify"] == "failed", "written, and exit 1"
    assert f"position {rowid}" in html.read_text(encoding="utf-8")
