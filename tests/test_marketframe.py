"""The bulk path of candle loading (`adapters.marketframe`) gives exactly what the per-row parser gives.

Each file is loaded twice: as shipped, and with the bulk path switched off (every row through the
per-row parser); candles, data report and errors must be equal, for tricky texts at every bound.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeledger.adapters import marketdata
from tradeledger.adapters.marketdata import MarketData, MarketDataError, load_candles
from tradeledger.adapters.marketframe import sure_rows

CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"
SUFFIXES = (".csv", ".parquet", ".json")
TIMES = ["2024-01-01T00:00:00Z", "2024-01-01 00:05:00", "2024-01-01T00:10:00+02:00", "1704068400",
         "1704068700000", " 2024-01-01T00:30:00", "2024-01-01T00:35:00.5-01:30", "2024-01-01T00:40:00.123456",
         "2199-12-31T23:55:00", "2200-01-01T00:00:00", "1969-12-31T23:59:59", "20240101", "", "1_704_068_400",
         "2023-12-31T23:55:00", "2024-01-01T00:00:00", "2024-01-01T00:05", "-1", "99999999999999999999"]
PRICES = ["1", "1.0", "1.00", "1.00000000000000001", "0.99999999999999999", "0.00000001", "0.000000009999999999",
          "0.00000000999999999999999999", "999999999999.99999999", "1e12", "1E-8", " 1 ", "+1.5", ".5", "5.",
          "nan", "inf", "-1", "", "abc", "1_0",
          "2", "0.5"]
VOLUMES = ["0", "0.000", "-0", "1e-31", "1E-30", "1e31", "9.99e30", "10", "", "-5", ".0", "0e5"]


def both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    def outcome() -> object:
        try:
            return load_candles(path)
        except MarketDataError as error:
            return str(error)

    bulk = outcome()
    with monkeypatch.context() as patched:
        patched.setattr(marketdata, "sure_rows", lambda frame: sure_rows(frame).clear())
        per_row = outcome()
    return bulk, per_row


@pytest.mark.parametrize("name", sorted(path.name for path in CANDLES.iterdir() if path.suffix in SUFFIXES))
def test_shared_files_load_the_same_both_ways(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bulk, per_row = both_ways(CANDLES / name, monkeypatch)
    assert isinstance(bulk, MarketData) and bulk == per_row


EDGES = """\
2024-01-01T00:00:00Z,1.0,1.00,1.0,1.0,0
2024-01-01 00:05:00,0.00000001,1,0.00000001,1,0.000
2024-01-01T00:10:00,0.00000000999999999999999999,1,0.00000000999999999999999999,1,1
2024-01-01T00:15:00,1.00000000000000001,1,1,1,1
2024-01-01T00:20:00,1,1,1.00000000000000001,1,1
2024-01-01T00:25:00,999999999999.99999999,999999999999.99999999,1,1,1
2024-01-01T00:30:00,999999999999.999999999999999,999999999999.999999999999999,1,1,1
2024-01-01T00:35:00,1,2,1,1,0.00000000000000000000000000000099999999999999999
2024-01-01T00:40:00,1,2,1,1,9999999999999999999999999999999.5
2024-01-01T00:45:00,1,2,1,1,-0
2024-01-01T00:50:00,1000000000000.00000000001,1000000000000.00000000001,1,1,1
2024-01-01T00:55:00,1,2,1,1,10000000000000000000000000000000.5
2024-01-01T01:00:00,1,2,1,1,9.99999999999999999999e-31
2199-12-31T23:55:00+00:00,1,2,1,1,1
2200-01-01T00:00:00,1,2,1,1,1
1704069600,1,2,1,1,1
7258118400000,1,2,1,1,1
"""


def test_rows_at_every_bound_load_the_same_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "X_Y-5m.csv"
    path.write_text("date,open,high,low,close,volume\n" + EDGES)
    bulk, per_row = both_ways(path, monkeypatch)
    assert isinstance(bulk, MarketData) and bulk == per_row and bulk.report.invalid


rows = st.lists(st.tuples(st.sampled_from(TIMES), *[st.sampled_from(PRICES)] * 4, st.sampled_from(VOLUMES)),
                min_size=1, max_size=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows)
def test_tricky_csv_rows_load_the_same_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  records: list[tuple[str, ...]]) -> None:
    path = tmp_path / "X_Y-5m.csv"
    path.write_text("date,open,high,low,close,volume\n" + "".join(",".join(r) + "\n" for r in records))
    bulk, per_row = both_ways(path, monkeypatch)
    assert bulk == per_row


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows, st.sampled_from([None, "UTC", "Europe/Berlin"]))
def test_tricky_parquet_values_load_the_same_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       records: list[tuple[str, ...]], zone: str | None) -> None:
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    start = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame({
        "date": pl.datetime_range(start, start.replace(hour=12), "5m", eager=True, time_zone=zone)[: len(records)],
        **{name: [number(r[i + 1]) for r in records] for i, name in enumerate(("open", "high", "low", "close"))},
        "volume": [number(r[5]) for r in records],
    })
    frame.write_parquet(path := tmp_path / "X_Y-5m.parquet")
    bulk, per_row = both_ways(path, monkeypatch)
    assert bulk == per_row
