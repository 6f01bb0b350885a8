"""The metrics traders compare: by hand on a small history, then through `backtest`, `report` and the API on a
real backtest (docs/metrics.md). The comparison with backtesting.py is tests/test_metrics_parity.py."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import polars as pl
import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.cli_report import timerange
from tradeledger.adapters.services.metrics import compute
from tradeledger.adapters.services.metrics_log import CandlePoint, History
from tradeledger.projections.portfolio_rows import FillRow, TradeRow
from tradeledger.domain.values import Side
from tests.apisupport import api_settings, serving
from tests.composing import composed
from tests.conftest import CANDLES

DATA = CANDLES / "ETH_BTC-5m.csv"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
STEP = timedelta(hours=6)
SPAN = ("2018-01-16T00:00:00+00:00", "2018-01-16T23:59:59+00:00")


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def cli_json(url: str, *args: str) -> Any:
    code, out, err = cli("--database", url, *args, "--json")
    assert code == 0, err
    return json.loads(out)


# -- by hand ---------------------------------------------------------------------------------------------------


def at(step: int) -> datetime:
    return T0 + STEP * step


def trade(seq: int, entry: int, exit_: int, pnl: str, reason: str = "signal") -> TradeRow:
    return TradeRow(account="a", seq=seq, symbol="X/USD", entry_time=at(entry), exit_time=at(exit_), quantity=Decimal(1),
                    entry_price=Decimal(100), exit_price=Decimal(100) + Decimal(pnl), fees=Decimal(0), pnl=Decimal(pnl),
                    exit_reason=reason)


def small_history() -> History:
    """Eight 6-hour candles; equity 100 110 99 105 120 118 118 130 at their closes; four trades."""
    closes = [100, 110, 99, 105, 120, 118, 118, 130]
    candles = [CandlePoint(time=at(i), close_time=at(i + 1), open=Decimal(c), high=Decimal(c), low=Decimal(c),
                           close=Decimal(c), volume=Decimal(1)) for i, c in enumerate(closes)]
    fill = FillRow(position=1, account="a", order_id=uuid4(), symbol="X/USD", side=Side.SELL,
                   price=Decimal(1), quantity=Decimal(1), fee=Decimal("0.5"), realised_pnl=Decimal(3), filled_at=at(3))
    return History(
        account="a", quote_currency="USD", initial_balance=Decimal(100), final_equity=Decimal(130),
        equity=[(at(i + 1), Decimal(e)) for i, e in enumerate(closes)],
        trades=[trade(1, 0, 1, "10"), trade(2, 1, 2, "-11", "stop_loss"), trade(3, 2, 3, "-1", "stop_loss"),
                trade(4, 5, 6, "12")],
        fills=[fill], candles={"X/USD": candles},
    )


def test_the_figures_of_a_small_history_by_hand() -> None:
    m = compute(small_history(), breakdown="day")
    assert m.return_percent == pytest.approx(30.0)
    assert (m.max_drawdown.percent, m.max_drawdown.peak_at, m.max_drawdown.trough_at,
            m.max_drawdown.recovered_at) == (pytest.approx(10.0), at(2), at(3), at(5))
    assert (m.trades, m.wins, m.losses, m.win_rate_percent) == (4, 2, 2, 50.0)
    assert (m.max_consecutive_wins, m.max_consecutive_losses) == (1, 2)
    # returns 10%, -11%, -1%, 12%: profit factor 22/12, expectancy 2.5%
    assert m.profit_factor == pytest.approx(22 / 12) and m.expectancy_percent == pytest.approx(2.5)
    assert (m.best_trade_percent, m.worst_trade_percent) == (pytest.approx(12.0), pytest.approx(-11.0))
    # candles 0..3 (trades 1-3 from entry candle to exit candle) and 5..6 of 8
    assert m.exposure_percent == pytest.approx(6 / 8 * 100)
    assert m.buy_and_hold_percent == pytest.approx(30.0)
    assert (m.median_duration_seconds, m.max_duration_seconds) == (STEP.total_seconds(), STEP.total_seconds())
    assert (m.gross_pnl, m.fees, m.net_pnl) == (Decimal(3), Decimal("0.5"), Decimal("2.5"))
    assert [(r.key, r.trades, r.net_pnl) for r in m.exit_reasons] == [("signal", 2, Decimal(22)),
                                                                       ("stop_loss", 2, Decimal(-12))]
    assert [(p.key, p.trades) for p in m.periods] == [("2024-01-01", 3), ("2024-01-02", 1)]
    assert m.pairs[0].market_change_percent == pytest.approx(30.0)


def test_a_span_starts_from_the_equity_before_it() -> None:
    m = compute(small_history(), start=at(4), end=at(6))  # closes at 4, 5, 6: equity 105 120 118
    assert m.initial_equity == Decimal(99) and m.final_equity == Decimal(118)
    assert m.return_percent == pytest.approx((118 / 99 - 1) * 100)
    assert m.trades == 1 and m.candles == 3  # trade 3 exits at 3: before the span


def test_a_history_without_candles_or_trades_has_no_figures_to_invent() -> None:
    empty = History(account="a", quote_currency="USD", initial_balance=Decimal(1), final_equity=Decimal(1),
                    equity=[], trades=[], fills=[], candles={})
    m = compute(empty, breakdown="week")
    assert (m.return_percent, m.exposure_percent, m.trades, m.periods) == (0.0, 0.0, 0, [])
    assert None is m.start is m.sharpe is m.profit_factor is m.buy_and_hold_percent is m.max_drawdown.peak_at


# -- the CLI and the API on a real backtest --------------------------------------------------------------------


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("metrics")
    url = f"sqlite:///{folder / 'ledger.sqlite'}"
    result = cli_json(url, "backtest", "--data", str(DATA), "--predictor", "sma_cross", "--timerange",
                      "20180115-20180118", "--fee", "0.002", "--slippage-bps", "5", "--initial-balance", "2",
                      "--breakdown", "day")
    assert cli_json(url, "export", "--out", str(folder / "export"), "--format", "parquet")
    return url, result, folder / "export"


def test_timerange_fee_slippage_and_balance_flags_decide_the_backtest(
        backtested: tuple[str, dict[str, Any], Path]) -> None:
    _, result, export = backtested
    candles = pl.read_parquet(export / "candles.parquet")
    assert result["candles"] == len(candles) == 3 * 288
    assert candles["open_time"].min() == datetime(2018, 1, 15, tzinfo=timezone.utc)
    assert candles["open_time"].max() == datetime(2018, 1, 17, 23, 55, tzinfo=timezone.utc)
    assert Decimal(result["initial_balance"]) == 2
    fills = pl.read_parquet(export / "fills.parquet").join(
        candles.select(pl.col("open_time").alias("filled_at"), "open"), on="filled_at")
    assert len(fills) > 10
    for side, price, quantity, fee, open_ in fills.select("side", "price", "quantity", "fee", "open").iter_rows():
        slipped = open_ * (1 + Decimal("0.0005") if side == "buy" else 1 - Decimal("0.0005"))
        assert abs(price - slipped) <= Decimal("1E-10"), (side, price, open_)
        assert abs(fee - price * quantity * Decimal("0.002")) <= Decimal("1E-12")


def test_backtest_json_keeps_its_fields_and_holds_every_metric(backtested: tuple[str, dict[str, Any], Path]) -> None:
    _, result, _ = backtested
    m = result["metrics"]
    assert {"return_percent", "max_drawdown_percent", "trades", "win_rate_percent", "closed_trades"} <= set(result)
    assert m["trades"] == result["trades"] and Decimal(m["fees"]) == Decimal(result["fees"])
    assert float(result["return_percent"]) == pytest.approx(m["return_percent"], abs=0.005)
    assert float(result["max_drawdown_percent"]) == pytest.approx(m["max_drawdown"]["percent"], abs=0.005)
    for name in ("cagr_percent", "sharpe", "sortino", "calmar", "profit_factor", "expectancy_percent", "sqn",
                 "best_day_percent", "avg_duration_seconds", "exposure_percent", "buy_and_hold_percent"):
        assert isinstance(m[name], float), name
    # backtesting.py's rule: 365 periods a year when the data has weekends; 15-17 January 2018 is Monday to Wednesday
    assert m["annualisation"] == "daily equity returns, 252 periods a year"
    assert [p["key"] for p in m["periods"]] == ["2018-01-15", "2018-01-16", "2018-01-17"]
    assert sum(p["trades"] for p in m["periods"]) == m["trades"] == sum(p["trades"] for p in m["pairs"])


def test_report_over_a_span_equals_a_recomputation_from_the_export(
        backtested: tuple[str, dict[str, Any], Path]) -> None:
    url, _, export = backtested
    m = cli_json(url, "report", "--from", SPAN[0], "--to", SPAN[1], "--breakdown", "week")
    start, end = (datetime.fromisoformat(t) for t in SPAN)
    trades = pl.read_parquet(export / "trades.parquet").filter(pl.col("exit_time").is_between(start, end))
    equity = pl.read_parquet(export / "equity.parquet")
    before = equity.filter(pl.col("time") < start)["equity"][-1]
    last = equity.filter(pl.col("time") <= end)["equity"][-1]
    assert m["trades"] == len(trades) > 0 and Decimal(m["initial_equity"]) == before
    assert m["return_percent"] == pytest.approx(float(last / before - 1) * 100)
    assert Decimal(m["periods"][0]["net_pnl"]) == sum(trades["pnl"].to_list(), Decimal(0))
    assert m["wins"] == len(trades.filter(pl.col("pnl") > 0))


def test_the_text_is_tables_without_colour_codes_when_not_a_terminal(
        backtested: tuple[str, dict[str, Any], Path]) -> None:
    code, out, _ = cli("--database", backtested[0], "report", "--breakdown", "month")
    assert code == 0 and "\x1b[" not in out
    for title in ("summary", "trades by pair (BTC)", "trades by exit reason (BTC)", "trades by month of exit (BTC)",
                  "Sharpe / Sortino / Calmar", "2018-01"):
        assert title in out, title


def test_the_api_serves_the_metrics_report_prints(backtested: tuple[str, dict[str, Any], Path]) -> None:
    url = backtested[0]
    printed = cli_json(url, "report", "--from", SPAN[0], "--to", SPAN[1])
    with composed(api_settings(url)) as container, serving(container) as base:
        served = httpx.get(f"{base}/api/metrics", params={"from": SPAN[0], "to": SPAN[1]})
        naive = httpx.get(f"{base}/api/metrics", params={"from": "2018-01-16T00:00:00"})
        reversed_ = httpx.get(f"{base}/api/metrics", params={"from": SPAN[1], "to": SPAN[0]})
    assert served.status_code == 200 and served.json() == printed
    assert naive.status_code == 400 and reversed_.status_code == 400


def test_report_html_writes_the_report(backtested: tuple[str, dict[str, Any], Path], tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, out, err = cli("--database", backtested[0], "report", "--html", str(page))
    assert code == 0, err
    assert f"html: {page}" in out and "ETH/BTC" in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--fee", "1", "--fee: expected a decimal >= 0 and < 1, got 1"),
    ("--fee", "NaN", "--fee: expected a decimal >= 0 and < 1, got NaN"),
    ("--slippage-bps", "-1", "--slippage-bps: expected a decimal >= 0 and < 10000, got -1"),
    ("--initial-balance", "0", "--initial-balance: expected a decimal from 1E-8 to 1E+12, got 0"),
    ("--timerange", "2018-01", "--timerange: expected START-END, START- or -END"),
    ("--timerange", "20180125-20180115", "--timerange: the start must be before the end"),
    ("--breakdown", "year", "--breakdown: invalid choice"),
])
def test_a_bad_flag_is_one_line_naming_it_and_exit_2(tmp_path: Path, flag: str, value: str, expected: str) -> None:
    code, out, err = cli("--database", f"sqlite:///{tmp_path / 'x.sqlite'}", "backtest", "--data", str(DATA),
                         flag, value)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and expected in err, err


def test_a_timerange_without_candles_and_a_store_without_the_account_are_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    code, _, err = cli("--database", url, "backtest", "--data", str(DATA), "--timerange", "20300101-")
    assert code == 2 and err.splitlines()[-1].startswith("tradeledger backtest: --timerange: no candles")
    code, _, err = cli("--database", url, "report")
    assert code == 2 and len(err.splitlines()) == 1 and "has no events" in err, err
    code, _, err = cli("--database", url, "report", "--from", SPAN[1], "--to", SPAN[0])
    assert code == 2 and err == "tradeledger report: --to: must not be before --from\n", err


def test_timerange_reads_freqtrades_forms() -> None:
    day = datetime(2018, 1, 15, tzinfo=timezone.utc)
    assert timerange("20180115-") == (day, None)
    assert timerange("-20180125") == (None, datetime(2018, 1, 25, tzinfo=timezone.utc))
    assert timerange(f"{int(day.timestamp())}-{int(day.timestamp()) + 60}") == (day, day + timedelta(minutes=1))
