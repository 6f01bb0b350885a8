"""What a market fixes, end to end through the CLI: the account's currency, the sessions that make a gap,
and a gap report that stays readable."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import exchange_calendars
import httpx
import pytest

from tradeledger.adapters.services.trading import AgentError, decision_settings
from tradeledger.adapters.cli import main
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.markets import MarketSettingsError, quote_currency
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.settings import load_settings
from tests.composing import composed
from tests.apisupport import api_settings, project, serving
from tests.agents import resumed, session
from tests.conftest import CANDLES, ROOT
from tests.test_agent import events_of, open_log

XRP_ETH = CANDLES / "XRP_ETH-5m.json"


def backtest(url: str, data: Path, *options: str) -> int:
    return main(["--database", url, "backtest", "--data", str(data), "--predictor", "sma_cross", *options])


def command_line(url: str, data: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """The backtest as a user runs it, so its exact stderr is what a user sees."""
    return subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--database", url, "backtest", "--data", str(data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": os.environ["PATH"], **environ})


def report_lines(stderr: str) -> list[str]:
    """The data report's lines (stderr also has progress lines, and may have log lines of other tests)."""
    return [line for line in stderr.splitlines() if re.match(r"\d+ rows, |gaps against |market.calendar auto: ", line)]


def test_an_xrp_eth_backtest_is_booked_in_eth(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert backtest(sqlite_url, XRP_ETH) == 0
    summary = capsys.readouterr().out
    assert "ETH (initial 1)" in summary and "BTC" not in summary
    assert backtest(sqlite_url, XRP_ETH, "--json") == 0  # the same store continued: nothing new, same account
    assert json.loads(capsys.readouterr().out)["quote_currency"] == "ETH"
    assert main(["--database", sqlite_url, "replay", "--position", "1000000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["account"]["quote_currency"] == "ETH"
    with composed(api_settings(sqlite_url)) as container:
        project(container)
        with serving(container) as url:
            assert httpx.get(f"{url}/api/portfolio", timeout=30).json()["quote_currency"] == "ETH"


def test_a_quote_that_differs_from_the_setting_is_refused_naming_both(sqlite_url: str) -> None:
    refused = command_line(sqlite_url, XRP_ETH, TRADELEDGER_TRADING__QUOTE_CURRENCY="BTC")
    assert (refused.returncode, refused.stderr) == (2, "tradeledger backtest: XRP/ETH is quoted in ETH, but "
                                                       "trading.quote_currency is BTC: set it to ETH or to auto\n")
    assert not events_of(open_log(sqlite_url), Account.Event), "nothing is recorded"


def test_a_store_booked_in_one_currency_refuses_a_market_quoted_in_another(sqlite_url: str) -> None:
    assert command_line(sqlite_url, XRP_ETH).returncode == 0
    refused = command_line(sqlite_url, CANDLES / "ETH_BTC-5m.csv")
    assert refused.returncode == 2 and refused.stderr.splitlines()[-1] == (
        "tradeledger backtest: ETH/BTC is quoted in BTC, but this store's account 'paper' holds ETH: "
        "use a new database")


def test_symbols_without_a_quote_need_the_setting() -> None:
    with pytest.raises(MarketSettingsError, match="GOOG names no quote currency .* set trading.quote_currency"):
        quote_currency(None, ["GOOG"])
    assert quote_currency("USD", ["GOOG"]) == "USD"
    with pytest.raises(MarketSettingsError, match=r"quoted in different currencies \(BTC, ETH\)"):
        quote_currency(None, ["ETH/BTC", "XRP/ETH"])


def write_stock_csv(path: Path, *, drop: int | None = None) -> list[datetime]:
    """A pandas-style daily CSV (unnamed date index, Open,High,Low,Close,Volume) on the real NYSE sessions
    of 2021-2022, holidays left out as the exchange does; a seeded random walk with swings that make the
    SMAs cross. `drop` removes that session, a real gap."""
    sessions = exchange_calendars.get_calendar("XNYS").sessions_in_range("2021-01-04", "2022-12-30")
    days = [moment.replace(tzinfo=UTC) for moment in sessions.to_pydatetime()]
    if drop is not None:
        del days[drop]
    rng = random.Random(11)
    close, lines = 100.0, [",Open,High,Low,Close,Volume"]
    for day in days:
        open_ = close * (1 + rng.gauss(0, 0.004))
        close = open_ * (1 + rng.gauss(0, 0.015))
        high, low = max(open_, close) * (1 + rng.random() * 0.01), min(open_, close) * (1 - rng.random() * 0.01)
        lines.append(f"{day:%Y-%m-%d},{open_:.2f},{high:.2f},{low:.2f},{close:.2f},{rng.randint(10**6, 5 * 10**6)}")
    path.write_text("\n".join(lines) + "\n")
    return days


@pytest.mark.parametrize("calendar, trades", [("XNYS", True), ("auto", True), ("24/7", False)])
def test_a_daily_stock_file_trades_on_its_exchange_sessions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        calendar: str, trades: bool) -> None:
    days = write_stock_csv(tmp_path / "goog.csv")
    monkeypatch.setenv("TRADELEDGER_MARKET__CALENDAR", calendar)
    monkeypatch.setenv("TRADELEDGER_TRADING__QUOTE_CURRENCY", "USD")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    assert backtest(url, tmp_path / "goog.csv", "--symbol", "GOOG", "--timeframe", "1d", "--json") == 0
    output = capsys.readouterr()
    result = json.loads(output.out)
    assert result["candles"] == len(days) and result["quote_currency"] == "USD"
    orders = events_of(open_log(url), Account.OrderPlaced)
    if not trades:  # every weekend counts as two missing candles: never good enough data to act on
        assert orders == [] and result["data"]["calendar"] == "24/7" and len(result["data"]["gaps"]) > 100
        return
    assert len(orders) >= 10 and result["trades"] >= 5
    weekdays = sum(1 for n in range((days[-1] - days[0]).days + 1) if (days[0] + timedelta(n)).weekday() < 5)
    holidays = weekdays - len(days)  # missing to auto, which cannot know them; the exchange calendar does
    missing = sum(gap["missing_count"] for gap in result["data"]["gaps"])
    assert (result["data"]["calendar"], missing) == (("XNYS", 0) if calendar == "XNYS" else ("Mon-Fri", holidays))
    if calendar == "auto":
        assert f"market.calendar auto: inferred Mon-Fri (UTC) from {len(days)} candles" in report_lines(output.err)
    assert main(["--database", url, "reproduce"]) == 0, "the resolved calendar is recorded and replayed"


def test_a_missing_session_is_still_a_gap(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    days = write_stock_csv(tmp_path / "goog.csv", drop=100)
    monkeypatch.setenv("TRADELEDGER_MARKET__CALENDAR", "XNYS")
    monkeypatch.setenv("TRADELEDGER_TRADING__QUOTE_CURRENCY", "USD")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    assert backtest(url, tmp_path / "goog.csv", "--symbol", "GOOG", "--timeframe", "1d", "--json") == 0
    output = capsys.readouterr()
    before, after = days[99], days[100]
    assert json.loads(output.out)["data"]["gaps"] == [
        {"after_open_time": f"{before:%Y-%m-%dT%H:%M:%SZ}", "next_open_time": f"{after:%Y-%m-%dT%H:%M:%SZ}",
         "missing_count": 1}]
    gap_line = f"gaps against XNYS sessions: largest 1 missing after {before.isoformat()}; first 1 missing after "
    assert report_lines(output.err)[1] == gap_line + before.isoformat()
    store = open_log(url)
    flagged = [e for e in events_of(store, Market.CandleClosed) if e.quality_flags]
    assert [(e.open_time, e.quality_flags) for e in flagged] == [(after, ("gap_before:1",))]
    signals = events_of(store, Market.SignalGenerated)
    assert min(s.data_quality for s in signals) == 20 / 21


def test_hundreds_of_gaps_make_one_summary_line_and_every_gap_in_json(
        sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert backtest(sqlite_url, CANDLES / "UNITTEST_BTC-1m.csv", "--json") == 0
    output = capsys.readouterr()
    head, gaps = report_lines(output.err)
    assert head.startswith("13681 rows, 538 gaps (717 missing candles)")
    assert gaps.startswith("gaps against 24/7 sessions: largest 7 missing after ") and gaps.endswith("lists all 538")
    listed = json.loads(output.out)["data"]["gaps"]
    assert len(listed) == 538 and sum(gap["missing_count"] for gap in listed) == 717


def test_a_store_recorded_before_market_calendar_existed_continues_as_24_7(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    store = open_store(sqlite_url)
    settings = load_settings(environ={}, overrides={"database.url": sqlite_url, "predictor.name": "sma_cross"})
    old_config = {k: v for k, v in decision_settings(settings).recorded().items() if k != "market.calendar"}
    store.save(AgentRun.start(key="before the key", version="0.0.1", host="h", pid=1, config_digest="d",
                              components=("agent",), model="sma_cross(seed=42)", decision_config=old_config,
                              at=datetime(2018, 1, 1, tzinfo=UTC)))
    agent = resumed(EventLog(store, create_db_engine(sqlite_url)), settings)
    agent.start(("test",))
    assert agent.run_feed(load_candles(CANDLES / "ADA_BTC-5m.csv").candles[:300], batch_size=100) == 300
    agent.stop("test")
    assert main(["--database", sqlite_url, "reproduce"]) == 0
    on_weekdays = load_settings(environ={}, overrides={"database.url": sqlite_url, "market.calendar": "Mon-Fri"})
    with pytest.raises(AgentError, match="market.calendar recorded '24/7', now 'Mon-Fri'"):
        session(EventLog(store, create_db_engine(sqlite_url)), on_weekdays).resume()
    store.close()
