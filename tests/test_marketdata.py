"""Market data loading: the real files, every supported file shape, and the quality report."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeledger.adapters.marketdata import MarketDataError, load_candles
from tradeledger.adapters.synthetic import synthetic_candles
from tradeledger.adapters.quality import Gap
from tradeledger.domain.values import Candle

CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"

# From /work/shared/data/README.md.
README_ROWS = {
    "ETH_BTC-5m.csv": 5760,
    "ETH_BTC-5m.parquet": 5760,
    "LTC_BTC-5m.csv": 5760,
    "ADA_BTC-5m.csv": 5720,
    "DASH_BTC-5m.csv": 5758,
    "XMR_BTC-5m.csv": 5758,
    "ZEC_BTC-5m.csv": 5757,
    "TRX_BTC-5m.csv": 5754,
    "UNITTEST_BTC-1m.csv": 13681,
    "XRP_ETH-5m.json": 706,
}
GAPPY = ["ADA_BTC-5m.csv", "DASH_BTC-5m.csv", "XMR_BTC-5m.csv", "ZEC_BTC-5m.csv", "TRX_BTC-5m.csv"]
HEADER = "date,open,high,low,close,volume\n"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shared_file_is_covered() -> None:
    assert sorted(p.name for p in CANDLES.iterdir()) == sorted(README_ROWS)


@pytest.mark.parametrize("name", sorted(README_ROWS))
def test_real_file_loads_with_readme_row_count(name: str) -> None:
    data = load_candles(CANDLES / name)
    rows = README_ROWS[name]
    assert (len(data.candles), data.report.rows) == (rows, rows)
    assert data.report.duplicates == data.report.out_of_order == data.report.invalid == []
    times = [candle.open_time for candle in data.candles]
    assert times == sorted(times) and all(t.tzinfo is UTC for t in times)
    # Nothing invented, nothing lost: the candles plus the missing ones fill the span exactly.
    step = timedelta(seconds=300 if data.timeframe == "5m" else 60)
    assert rows + data.report.missing_candles == (times[-1] - times[0]) / step + 1


def test_symbol_and_timeframe_come_from_the_file_name() -> None:
    data = load_candles(CANDLES / "ETH_BTC-5m.csv")
    assert (data.symbol, data.timeframe) == ("ETH/BTC", "5m")
    assert load_candles(CANDLES / "UNITTEST_BTC-1m.csv", symbol="X/Y").symbol == "X/Y"


@pytest.mark.parametrize("name", GAPPY)
def test_gappy_files_report_their_gaps(name: str) -> None:
    report = load_candles(CANDLES / name).report
    assert report.gaps and all(gap.missing_count >= 1 for gap in report.gaps)
    assert all(gap.next_open_time - gap.after_open_time > timedelta(minutes=5) for gap in report.gaps)


def test_ada_gap_is_reported_exactly() -> None:
    gaps = load_candles(CANDLES / "ADA_BTC-5m.csv").report.gaps
    at = datetime(2018, 1, 15, 11, 55, tzinfo=UTC)
    assert Gap(at, at + timedelta(minutes=170), 33) in gaps


@pytest.mark.parametrize("name", ["ETH_BTC-5m.csv", "LTC_BTC-5m.csv"])
def test_complete_files_report_no_gaps(name: str) -> None:
    assert load_candles(CANDLES / name).report.gaps == []


def test_prices_are_decimal_exactly_as_written() -> None:
    first = load_candles(CANDLES / "ETH_BTC-5m.csv").candles[0]
    # 2018-01-10T04:55:00Z,0.0984,0.0994766,0.09828605,0.0994766,1820.54447418
    assert first == Candle(
        symbol="ETH/BTC", timeframe="5m", open_time=datetime(2018, 1, 10, 4, 55, tzinfo=UTC),
        open=Decimal("0.0984"), high=Decimal("0.0994766"), low=Decimal("0.09828605"),
        close=Decimal("0.0994766"), volume=Decimal("1820.54447418"),
    )  # fmt: skip
    assert str(load_candles(CANDLES / "TRX_BTC-5m.csv").candles[0].open) == "0.00010766"


def test_parquet_floats_load_as_the_same_decimals_as_the_csv() -> None:
    csv = load_candles(CANDLES / "ETH_BTC-5m.csv").candles
    parquet = load_candles(CANDLES / "ETH_BTC-5m.parquet").candles
    assert parquet == csv
    assert [str(c.low) for c in parquet[:3]] == ["0.09828605", "0.099", "0.09900001"]


def test_json_records_keep_their_text() -> None:
    first = load_candles(CANDLES / "XRP_ETH-5m.json").candles[0]
    assert first.open_time == datetime(2019, 10, 11, tzinfo=UTC)
    assert (str(first.open), str(first.volume)) == ("0.00141342", "3478.0")


@pytest.mark.parametrize(
    ("header", "first_time", "second_time"),
    [
        ("date", "1515560100", "1515560400"),  # epoch seconds
        ("timestamp", "1515560100000", "1515560400000"),  # epoch milliseconds
        ("Open_Time", "2018-01-10 04:55:00", "2018-01-10 05:00:00"),  # naive means UTC
        ("DateTime", "2018-01-10T05:55:00+01:00", "2018-01-10T06:00:00+01:00"),  # offsets converted
        ("", "2018-01-10T04:55:00Z", "2018-01-10T05:00:00Z"),  # pandas-style unnamed index column
    ],
)
def test_csv_time_columns_and_formats(tmp_path: Path, header: str, first_time: str, second_time: str) -> None:
    text = f"{header},OPEN,High,low,CLOSE,Volume\n{first_time},1,2,0.5,1.5,10\n{second_time},1.5,2,1,1.2,0\n"
    data = load_candles(write(tmp_path, "pair.csv", text))
    assert [c.open_time for c in data.candles] == [
        datetime(2018, 1, 10, 4, 55, tzinfo=UTC),
        datetime(2018, 1, 10, 5, 0, tzinfo=UTC),
    ]
    assert (data.symbol, data.timeframe) == ("pair", "5m")  # inferred from the spacing
    assert data.candles[1].volume == Decimal("0")


@pytest.mark.parametrize("zone", [None, "UTC", "Europe/Berlin"])
def test_parquet_datetimes_naive_or_aware(tmp_path: Path, zone: str | None) -> None:
    times = pl.Series([datetime(2020, 1, 1, 12), datetime(2020, 1, 1, 13)]).dt.replace_time_zone(zone)
    frame = pl.DataFrame({"Date": times, "Open": [1.0, 2.0], "High": [2.5, 2.0], "Low": [1.0, 1.5],
                          "Close": [2.0, 1.5], "Volume": [0.00012345, 7.0]})  # fmt: skip
    frame.write_parquet(tmp_path / "X_Y.parquet")
    data = load_candles(tmp_path / "X_Y.parquet")
    offset = timedelta(hours=1) if zone == "Europe/Berlin" else timedelta(0)
    assert data.candles[0].open_time == datetime(2020, 1, 1, 12, tzinfo=UTC) - offset
    assert (data.symbol, data.timeframe, data.candles[0].volume) == ("X/Y", "1h", Decimal("0.00012345"))


def test_out_of_order_rows_are_reported_and_sorted(tmp_path: Path) -> None:
    rows = ["2020-01-01T00:10:00Z,1,1,1,1,1", "2020-01-01T00:00:00Z,2,2,2,2,2", "2020-01-01T00:05:00Z,3,3,3,3,3"]
    data = load_candles(write(tmp_path, "A_B-5m.csv", HEADER + "\n".join(rows) + "\n"))
    assert [c.open for c in data.candles] == [Decimal(2), Decimal(3), Decimal(1)]
    assert data.report.out_of_order == [2, 3]
    assert "row 2: out of order" in data.report.summary()


def test_duplicate_timestamps_keep_the_first_row(tmp_path: Path) -> None:
    rows = ["2020-01-01T00:00:00Z,1,1,1,1,1", "2020-01-01T00:05:00Z,2,2,2,2,2", "2020-01-01T00:05:00Z,3,3,3,3,3"]
    data = load_candles(write(tmp_path, "A_B-5m.csv", HEADER + "\n".join(rows) + "\n"))
    assert [c.open for c in data.candles] == [Decimal(1), Decimal(2)]
    assert (data.report.duplicates, data.report.rows) == ([3], 3)


def test_invalid_rows_are_excluded_and_reported_by_row(tmp_path: Path) -> None:
    rows = [
        "2020-01-01T00:00:00Z,0.15,0.2,0.1,0.15,1",
        "2020-01-01T00:05:00Z,0.15,0.1,0.2,0.15,1",  # high below low
        "2020-01-01T00:10:00Z,0.15,0.2,0.1,abc,1",
        "2020-01-01T00:15:00Z,0.15,0.2,0,0.15,1",  # non-positive low
        "not a time,0.15,0.2,0.1,0.15,1",
        "2020-01-01T00:25:00Z,0.15,0.2,0.1,0.15,",
        "2020-01-01T00:30:00Z,0.15,0.2,0.1,0.15,2",
    ]
    data = load_candles(write(tmp_path, "A_B-5m.csv", HEADER + "\n".join(rows) + "\n"))
    assert [c.volume for c in data.candles] == [Decimal(1), Decimal(2)]
    assert [(e.row, e.field) for e in data.report.invalid] == [
        (2, "high"), (3, "close"), (4, "low"), (5, "time"), (6, "volume")
    ]  # fmt: skip
    lines = data.report.summary().splitlines()
    assert "row 2: high 0.1 below low 0.2" in lines
    assert "row 3: close 'abc' is not a number" in lines
    # The invalid rows leave holes in time: those are gaps, not silently closed.
    assert data.report.gaps == [Gap(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, 0, 30, tzinfo=UTC), 5)]


def test_missing_column_names_the_column_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "A_B-5m.csv", "date,open,high,low,close\n2020-01-01T00:00:00Z,1,1,1,1\n")
    with pytest.raises(MarketDataError, match="missing column volume") as caught:
        load_candles(path)
    assert str(path) in str(caught.value)


def test_missing_time_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match="missing time column"):
        load_candles(write(tmp_path, "A_B-5m.csv", "when,open,high,low,close,volume\nx,1,1,1,1,1\n"))


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("A_B-5m.csv", "", "cannot read"),
        ("A_B-5m.csv", HEADER + "2020-01-01T00:00:00Z,1,0.5,1,1,1\n", "no valid rows among 1 .*high"),
        ("A_B-5m.json", "{\"not\": \"an array\"}", "expected a JSON array"),
        ("A_B-5m.json", "[[1, 2]", "cannot read"),
        ("A_B-5m.txt", "x", "unsupported file type"),
    ],
)
def test_unusable_files_raise_market_data_error(tmp_path: Path, name: str, text: str, reason: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(MarketDataError, match=reason) as caught:
        load_candles(path)
    assert isinstance(caught.value, ValueError) and caught.value.path == path


def test_missing_file_raises_market_data_error(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match="nope-5m.csv"):
        load_candles(tmp_path / "nope-5m.csv")


def test_malformed_json_record_is_an_invalid_row(tmp_path: Path) -> None:
    path = write(tmp_path, "A_B-5m.json", "[[1577836800000, 1, 1, 1, 1, 1], [1, 2], 7]")
    data = load_candles(path)
    assert len(data.candles) == 1
    assert [(e.row, e.field) for e in data.report.invalid] == [(2, "record"), (3, "record")]


@pytest.mark.parametrize("timeframe", ["5x", "99999999999w", "53w", "366d", "²m"])
def test_bad_timeframe_argument_names_the_field(timeframe: str) -> None:
    with pytest.raises(MarketDataError) as caught:
        load_candles(CANDLES / "ETH_BTC-5m.csv", timeframe=timeframe)
    assert caught.value.reason.startswith("timeframe: expected a positive count and a unit m/h/d/w, at most a year")
    assert repr(timeframe) in caught.value.reason


def test_synthetic_candles_are_deterministic_and_valid() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    first = list(islice(synthetic_candles("DEMO/USD", "1m", start=start, seed=7), 2000))
    assert first == list(islice(synthetic_candles("DEMO/USD", "1m", start=start, seed=7), 2000))
    assert first != list(islice(synthetic_candles("DEMO/USD", "1m", start=start, seed=8), 2000))
    for previous, candle in zip(first, first[1:]):
        candle.check()
        assert candle.open_time - previous.open_time == timedelta(minutes=1)
        assert candle.open == previous.close
        assert candle.close == candle.close.quantize(Decimal("1e-8"))
    assert first[0].open_time == start


@st.composite
def candle_lists(draw: st.DrawFn) -> list[Candle]:
    price = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("100000"), places=8)
    steps = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=2, max_size=30))
    open_time = datetime(2021, 3, 1, tzinfo=UTC)
    candles = []
    for step in steps:
        open_time += timedelta(minutes=5 * step)
        low, a, b, high = sorted(draw(st.lists(price, min_size=4, max_size=4)))
        open_, close = (a, b) if draw(st.booleans()) else (b, a)
        volume = draw(st.decimals(min_value=0, max_value=Decimal("1e9"), places=8))
        candles.append(Candle(symbol="HYP/USD", timeframe="5m", open_time=open_time, open=open_,
                              high=high, low=low, close=close, volume=volume))  # fmt: skip
    return candles


@settings(max_examples=60, deadline=None)
@given(candle_lists())
def test_csv_round_trips_candles_exactly(candles: list[Candle]) -> None:
    lines = [
        f"{c.open_time:%Y-%m-%dT%H:%M:%SZ},{c.open},{c.high},{c.low},{c.close},{c.volume}" for c in candles
    ]
    with tempfile.TemporaryDirectory() as directory:
        data = load_candles(write(Path(directory), "HYP_USD-5m.csv", HEADER + "\n".join(lines) + "\n"))
    assert data.candles == candles
    assert [str(c.close) for c in data.candles] == [str(c.close) for c in candles]
    spans = [(b.open_time - a.open_time) // timedelta(minutes=5) for a, b in zip(candles, candles[1:])]
    assert data.report.missing_candles == sum(span - 1 for span in spans)
