"""Bounded inputs: prices, volumes, times, nesting and timeframes outside the documented ranges are invalid
rows, unusable files or invalid settings, never a traceback or a history that cannot be read back."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeledger.adapters.cli import main
from tradeledger.adapters.marketdata import MarketDataError, load_candles
from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.values import Candle, timeframe_seconds
from tradeledger.settings import SettingsError, load_settings
from tests.conftest import CANDLES

REAL = CANDLES / "ETH_BTC-5m.csv"
REAL_JSON = CANDLES / "XRP_ETH-5m.json"
GOOD_ROWS = 300
STEP = timedelta(minutes=5)


def real_lines(count: int) -> list[str]:
    return REAL.read_text().splitlines()[: count + 1]  # the header and `count` rows


def next_time(lines: list[str]) -> str:
    last = datetime.fromisoformat(lines[-1].split(",")[0])
    return (last + STEP).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_ending_with(tmp_path: Path, row: str) -> Path:
    """The first GOOD_ROWS real candles, then `row` ({next} is the next candle time)."""
    lines = real_lines(GOOD_ROWS)
    path = tmp_path / "ETH_BTC-5m.csv"
    path.write_text("\n".join([*lines, row.format(next=next_time(lines))]) + "\n")
    return path


def stored(database: Path, kind: str = "") -> int:
    with sqlite3.connect(database) as connection:
        [(count,)] = connection.execute("SELECT count(*) FROM stored_events WHERE topic LIKE ?", (f"%{kind}",))
    return count


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


# Each of these ended in a traceback or an undecodable event after part of the history was recorded.
REPORTED_CRASHES = {
    "tiny price": ("{next},1E-999999999,1E-999999999,1E-999999999,1E-999999999,5", "open"),
    "huge price": ("{next},1E+999999999,1E+999999999,1E+999999999,1E+999999999,5", "open"),
    "huge volume": ("{next},0.1,0.1,0.1,0.1,1E+999999999", "volume"),
    "year 9999": ("9999-12-31T23:59:59Z,0.1,0.1,0.1,0.1,5", "time"),
}


@pytest.mark.parametrize("case", sorted(REPORTED_CRASHES))
def test_a_bad_last_row_is_reported_and_never_recorded(tmp_path: Path, case: str, capsys) -> None:
    row, field = REPORTED_CRASHES[case]
    database = tmp_path / "ledger.sqlite"
    url = f"sqlite:///{database}"
    assert main(["--database", url, "backtest", "--data", str(file_ending_with(tmp_path, row)),
                 "--predictor", "sma_cross"]) == 0
    err = stderr_lines(capsys)
    assert err[0] == f"{GOOD_ROWS + 1} rows, 0 gaps (0 missing candles), 0 duplicates, 0 out of order, 1 invalid"
    assert any(line.startswith(f"row {GOOD_ROWS + 1}: {field} ") for line in err)
    assert stored(database, "CandleClosed") == GOOD_ROWS  # the whole file was checked first
    assert main(["--database", url, "verify"]) == 0, capsys.readouterr().out


def nested_json(tmp_path: Path) -> Path:
    path = tmp_path / "XRP_ETH-5m.json"
    path.write_text("[" * 100_000 + "]" * 100_000)  # 200 KB
    return path


def nested_record(tmp_path: Path) -> Path:
    path = tmp_path / "XRP_ETH-5m.json"
    path.write_text(REAL_JSON.read_text().rstrip()[:-1] + ", [1570965600000, [[0.001]], 1, 1, 1, 1]]")
    return path


def timeframe_in_the_name(tmp_path: Path) -> Path:
    path = tmp_path / "XRP_ETH-99999999999w.json"
    path.write_text(REAL_JSON.read_text())
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (nested_json, "nested deeper than a JSON array of [epoch_ms, open, high, low, close, volume] records"),
        (nested_record, "record 707 is nested deeper than a JSON array of"),
        (timeframe_in_the_name, "timeframe: expected a positive count and a unit m/h/d/w, at most a year (365d)"),
    ],
)
def test_an_unusable_file_is_one_line_exit_2_and_records_nothing(tmp_path: Path, make, reason: str, capsys) -> None:
    path, database = make(tmp_path), tmp_path / "ledger.sqlite"
    assert main(["--database", f"sqlite:///{database}", "backtest", "--data", str(path)]) == 2
    [line] = stderr_lines(capsys)
    assert line.startswith(f"tradeledger backtest: {path}: ") and reason in line
    assert stored(database) == 0


def test_a_timeframe_above_a_year_is_an_invalid_setting(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TRADELEDGER_TRADING__TIMEFRAME", "99999999999w")
    database = tmp_path / "never.sqlite"
    assert main(["--database", f"sqlite:///{database}", "agent"]) == 2
    assert stderr_lines(capsys) == [
        "tradeledger: invalid settings",
        "trading.timeframe: expected a positive count and a unit m/h/d/w, at most a year (365d), e.g. 5m, "
        "got '99999999999w'",
    ]
    assert not database.exists()


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("{next},0.00000001,0.00000001,0.00000001,0.00000001,0", None),  # the smallest price, no volume
        ("{next},0.1,999999999999.99,0.1,0.1,1E-30", None),  # just below the largest price; smallest volume
        ("{next},0.1,0.1,0.1,0.1,9.99E+30", None),
        ("2199-12-31T23:55:00Z,0.1,0.1,0.1,0.1,1", None),  # the last open time
        ("{next},0.1,1E+12,0.1,0.1,1", "high"),
        ("{next},0.1,0.1,9.9E-9,0.1,1", "low"),
        ("{next},0.1,0.1,0.1,0.1,1E-31", "volume"),
        ("{next},0.1,0.1,0.1,0.1,1E+31", "volume"),
        ("2200-01-01T00:00:00Z,0.1,0.1,0.1,0.1,1", "time"),
        ("1969-12-31T23:59:59Z,0.1,0.1,0.1,0.1,1", "time"),
        ("-1000,0.1,0.1,0.1,0.1,1", "time"),
        ("1E+999999999,0.1,0.1,0.1,0.1,1", "time"),
        ("{next},0.1,0.1,0.1,sNaN,1", "close"),
    ],
)
def test_the_documented_ranges_at_their_edges(tmp_path: Path, row: str, field: str | None) -> None:
    data = load_candles(file_ending_with(tmp_path, row))
    assert [entry.field for entry in data.report.invalid] == ([] if field is None else [field])
    assert len(data.candles) == GOOD_ROWS + (field is None)


def test_a_json_file_nested_within_the_parser_limit_is_unusable_too(tmp_path: Path) -> None:
    path = tmp_path / "A_B-5m.json"
    path.write_text("[" * 500 + "]" * 500)
    with pytest.raises(MarketDataError, match="record 1 is nested deeper"):
        load_candles(path)


def test_a_timeframe_inferred_above_a_year_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    path.write_text("date,open,high,low,close,volume\n2018-01-01,1,1,1,1,1\n2020-01-01,1,1,1,1,1\n")
    with pytest.raises(MarketDataError, match=r"at most a year \(365d\), e.g. 5m \(got '730d'\)"):
        load_candles(path)


@pytest.mark.parametrize(("timeframe", "seconds"), [("1m", 60), ("525600m", 31_536_000), ("8760h", 31_536_000),
                                                    ("365d", 31_536_000), ("52w", 31_449_600), ("05m", 300)])
def test_timeframes_up_to_a_year(timeframe: str, seconds: int) -> None:
    assert timeframe_seconds(timeframe) == seconds


@pytest.mark.parametrize("timeframe", ["366d", "53w", "8761h", "0m", "99999999999w", "9" * 5000 + "m", "５m", "5m\n"])
def test_timeframes_above_a_year_or_malformed_are_refused(timeframe: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        timeframe_seconds(timeframe)
    assert caught.value.field == "timeframe"


def test_candle_check_applies_the_ranges_to_every_feed() -> None:
    candle = Candle(symbol="A/B", timeframe="5m", open_time=datetime(2024, 1, 1, tzinfo=UTC), open=Decimal(1),
                    high=Decimal(1), low=Decimal(1), close=Decimal(1), volume=Decimal(0))
    assert candle.check() is candle
    for change, field in [({"close": Decimal("1E+999999999")}, "close"), ({"volume": Decimal("-1")}, "volume"),
                          ({"open_time": datetime(2200, 1, 1, tzinfo=UTC)}, "open_time"),
                          ({"timeframe": "99999999999w"}, "timeframe")]:
        with pytest.raises(InvalidValue) as caught:
            Candle(**{**{f: getattr(candle, f) for f in candle.__struct_fields__}, **change}).check()
        assert caught.value.field == field


EDGES = [Decimal(x) for x in ("NaN", "sNaN", "Infinity", "-Infinity", "0", "-1", "1E-9", "1E-8", "0.5", "1", "2",
                              "999999999999.99999999", "1E+12", "1E-30", "1E-31", "1E+31")]


def rule_by_rule(o: Decimal, h: Decimal, low: Decimal, c: Decimal, v: Decimal) -> bool:
    """Candle.check's rules one at a time, as documented."""
    prices_ok = all(p.is_finite() and Decimal("1E-8") <= p < Decimal("1E+12") for p in (o, h, low, c))
    volume_ok = v.is_finite() and (v.is_zero() or Decimal("1E-30") <= v < Decimal("1E+31"))
    return prices_ok and volume_ok and low <= h and low <= o <= h and low <= c <= h


@settings(max_examples=500, deadline=None)
@given(*(st.sampled_from(EDGES) for _ in range(5)))
def test_candle_check_accepts_exactly_the_candles_its_rules_accept(o: Decimal, h: Decimal, low: Decimal, c: Decimal,
                                                                   v: Decimal) -> None:
    """The check's one-expression path for the usual candle may not let through what a rule refuses."""
    candle = Candle(symbol="A/B", timeframe="5m", open_time=datetime(2024, 1, 1, tzinfo=UTC), open=o, high=h,
                    low=low, close=c, volume=v)
    if rule_by_rule(o, h, low, c, v):
        assert candle.check() is candle
    else:
        with pytest.raises(InvalidValue):
            candle.check()


def test_numeric_settings_outside_what_the_code_computes_with_are_all_reported() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={
            "TRADELEDGER_TRADING__INITIAL_BALANCE": "1E+16",  # beyond the ledger's exact decimals
            "TRADELEDGER_TRADING__SLIPPAGE_BPS": "10000",  # a sell at a price of zero
            "TRADELEDGER_TRADING__UPDATE_INTERVAL": "1e300",
            "TRADELEDGER_PROJECTIONS__POLL_INTERVAL": "0",
            "TRADELEDGER_PREDICTOR__SLOW": "10000000000000000001",
        })
    assert str(caught.value).splitlines() == [
        "trading.initial_balance: expected a decimal from 1E-8 to 1E+12, got '1E+16'",
        "trading.update_interval: expected a number of seconds from 0.001 to 86400, got '1e300'",
        "trading.slippage_bps: expected a decimal >= 0 and < 10000, got '10000'",
        "predictor.slow: expected an integer from 1 to 1000000, got '10000000000000000001'",
        "projections.poll_interval: expected a number of seconds from 0.001 to 86400, got '0'",
    ]
    edges = load_settings(environ={"TRADELEDGER_TRADING__INITIAL_BALANCE": "1E+12",
                                   "TRADELEDGER_TRADING__SLIPPAGE_BPS": "9999.99",
                                   "TRADELEDGER_TRADING__UPDATE_INTERVAL": "86400",
                                   "TRADELEDGER_PROJECTIONS__POLL_INTERVAL": "0.001",
                                   "TRADELEDGER_PREDICTOR__SLOW": "1000000"})
    assert edges.trading.initial_balance == Decimal("1E+12") and edges.predictor.slow == 1_000_000


def scaled_real_file(tmp_path: Path, factor: Decimal, rows: int = 1500) -> Path:
    lines = real_lines(rows)
    scaled = [lines[0]] + [
        ",".join([time, *(str(Decimal(price) * factor) for price in prices), volume])
        for time, *prices, volume in (line.split(",") for line in lines[1:])
    ]
    path = tmp_path / "EDGE_BTC-5m.csv"
    path.write_text("\n".join(scaled) + "\n")
    return path


@pytest.mark.parametrize(
    ("factor", "balance"),
    [(Decimal("1.25E-7"), "1E-8"), (Decimal("9E+12"), "1E+12")],  # lows near 1E-8, highs near 1E+12
    ids=["smallest prices and balance", "largest prices and balance"],
)
def test_real_candles_at_the_edges_of_the_ranges_trade_and_verify(tmp_path: Path, factor: Decimal, balance: str,
                                                                   monkeypatch, capsys) -> None:
    monkeypatch.setenv("TRADELEDGER_TRADING__INITIAL_BALANCE", balance)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    path = scaled_real_file(tmp_path, factor)
    data = load_candles(path)
    assert data.report.invalid == []
    prices = [price for c in data.candles for price in (c.low, c.high)]
    assert Decimal("1E-8") <= min(prices) < Decimal("1.1E-8") or Decimal("9E+11") < max(prices) < Decimal("1E+12")
    assert main(["--database", url, "backtest", "--data", str(path), "--predictor", "sma_cross", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trades"] > 0 and Decimal(result["initial_balance"]) == Decimal(balance)
    assert main(["--database", url, "verify"]) == 0, capsys.readouterr().out
