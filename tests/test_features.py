"""The incremental feature engine against its vectorised polars twin, and data quality."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeledger.adapters.marketdata import load_candles
from tradeledger.domain.errors import CandleOutOfOrder, InvalidValue
from tradeledger.domain.features import FEATURE_NAMES, FeatureEngine, Features, _Window
from tradeledger.domain.values import Candle
from tests.features_oracle import candles_frame, compute_features_frame

CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"
PARAMETERS = [
    {"fast": 10, "slow": 20, "window": 20, "rsi_period": 14},
    {"fast": 3, "slow": 30, "window": 7, "rsi_period": 5},
]
# 1e-9 relative; the 1e-12 absolute floor only matters for values that are differences of
# nearly equal numbers (sma_gap or mean_return near 0), where rounding is all that is left.
REL, ABS = 1e-9, 1e-12


def run_engine(candles: list[Candle], **parameters: int) -> list[Features]:
    engine = FeatureEngine(**parameters)
    return [engine.update(candle) for candle in candles]


def assert_matches_frame(candles: list[Candle], parameters: dict[str, int]) -> None:
    features = run_engine(candles, **parameters)
    frame = compute_features_frame(candles_frame(candles), **parameters)
    assert [f.ready for f in features] == frame["ready"].to_list()
    for name in FEATURE_NAMES:
        for row, (engine_value, frame_value) in enumerate(zip((f.values[name] for f in features), frame[name])):
            assert math.isclose(engine_value, frame_value, rel_tol=REL, abs_tol=ABS), (name, row)


@pytest.fixture(scope="module")
def eth() -> list[Candle]:
    return load_candles(CANDLES / "ETH_BTC-5m.csv").candles


@pytest.mark.parametrize("parameters", PARAMETERS)
def test_engine_matches_polars_on_the_real_file(eth: list[Candle], parameters: dict[str, int]) -> None:
    assert_matches_frame(eth, parameters)


def test_features_are_named_ordered_and_never_nan(eth: list[Candle]) -> None:
    features = run_engine(eth[:40])
    assert all(f.names == FEATURE_NAMES and all(map(math.isfinite, f.values.values())) for f in features)
    warmup = FeatureEngine().warmup
    assert [f.ready for f in features].index(True) == warmup - 1 == 20
    first = features[0].values
    assert first["range_pct"] > 0 and all(first[name] == 0.0 for name in FEATURE_NAMES if name != "range_pct")
    assert 0 <= min(f.values["rsi"] for f in features[warmup:]) <= max(f.values["rsi"] for f in features) <= 100


def test_sma_values_are_the_plain_means(eth: list[Candle]) -> None:
    features = run_engine(eth[:25])
    closes = [float(c.close) for c in eth[:25]]
    assert features[24].values["sma_slow"] == pytest.approx(sum(closes[5:25]) / 20, rel=1e-12)
    assert features[24].values["prev_sma_fast"] == pytest.approx(sum(closes[14:24]) / 10, rel=1e-12)


def test_volume_z_stays_exact_when_the_spread_is_tiny_next_to_the_level(eth: list[Candle]) -> None:
    # Sums of squares alone would cancel to noise here (level 1e6, spread ~1).
    volumes = [Decimal(1_000_000 + (i * 7) % 3) for i in range(60)]
    candles = [msgspec.structs.replace(c, volume=v) for c, v in zip(eth, volumes)]
    features = run_engine(candles)
    for t in range(19, 60):
        window = [float(v) for v in volumes[t - 19 : t + 1]]
        expected = (window[-1] - statistics.mean(window)) / statistics.stdev(window)
        assert features[t].values["volume_z"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def expected_quality(candles: list[Candle], index: int, slow: int = 20) -> float:
    """Independently: candles present in the last `slow` over the slots their span covers."""
    window = candles[max(0, index - slow + 1) : index + 1]
    slots = (window[-1].open_time - window[0].open_time) / timedelta(minutes=5) + 1
    return len(window) / slots


def test_data_quality_follows_the_gaps_in_a_real_file() -> None:
    candles = load_candles(CANDLES / "ADA_BTC-5m.csv").candles
    features = run_engine(candles)
    assert all(f.data_quality == pytest.approx(expected_quality(candles, i)) for i, f in enumerate(features))
    after_gap = next(i for i, c in enumerate(candles) if c.open_time == datetime(2018, 1, 15, 14, 45, tzinfo=UTC))
    assert features[after_gap].data_quality < 20 / (20 + 33) + 1e-12  # 33 candles missing before it
    assert features[after_gap + 19].data_quality == 1.0  # the gap has left the slow window
    assert all(f.data_quality == 1.0 for f in features[:1000])  # a clean stretch


def test_data_quality_is_one_on_a_complete_file(eth: list[Candle]) -> None:
    assert {f.data_quality for f in run_engine(eth)} == {1.0}


def test_a_candle_not_after_the_last_is_refused_and_changes_nothing(eth: list[Candle]) -> None:
    engine = FeatureEngine()
    for candle in eth[:30]:
        engine.update(candle)
    for stale in (eth[29], eth[10]):
        with pytest.raises(CandleOutOfOrder, match="not after"):
            engine.update(stale)
    assert engine.update(eth[30]) == run_engine(eth[:31])[-1]


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"fast": 20, "slow": 20}, "fast"),
        ({"fast": 0}, "fast"),
        ({"window": 1}, "window"),
        ({"rsi_period": 0}, "rsi_period"),
    ],
)
def test_bad_lengths_name_the_field(parameters: dict[str, int], field: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        FeatureEngine(**parameters)
    assert caught.value.field == field


@st.composite
def price_walks(draw: st.DrawFn) -> list[Candle]:
    """A random walk of 8-place prices with flat stretches, and integer volumes."""
    close = draw(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3))
    segments = st.tuples(st.integers(min_value=-500, max_value=500), st.integers(min_value=0, max_value=25))
    open_time = datetime(2022, 6, 1, tzinfo=UTC)
    candles = []
    for basis_points, flat in draw(st.lists(segments, min_size=1, max_size=30)):
        for move in [basis_points] + [0] * flat:
            moved = (close * (1 + Decimal(move) / 10_000)).quantize(Decimal("1e-8"))
            open_, close = close, max(Decimal("1e-8"), moved)
            spread = Decimal(draw(st.integers(min_value=0, max_value=300))) / 10_000
            candles.append(Candle(
                symbol="HYP/USD", timeframe="5m", open_time=open_time, open=open_, close=close,
                high=max(open_, close) * (1 + spread), low=min(open_, close) * (1 - spread),
                volume=Decimal(draw(st.integers(min_value=0, max_value=1000))),
            ))  # fmt: skip
            open_time += timedelta(minutes=5)
    return candles


@settings(max_examples=100, deadline=None)
@given(price_walks(), st.sampled_from(PARAMETERS))
def test_engine_matches_polars_on_random_walks(candles: list[Candle], parameters: dict[str, int]) -> None:
    assert_matches_frame(candles, parameters)



def flat_by_max_and_min(values: list[float], size: int) -> tuple[float, float]:
    """`_Window.mean_std` as it was written before it counted the last value: the reference."""
    window = values[-size:]
    if len(window) < size:
        return 0.0, 0.0
    total = math.fsum(window)
    mean = total / size
    if max(window) == min(window):
        return mean, 0.0
    sum_squares = math.fsum(x * x for x in window)
    deviations = sum_squares - total * mean
    if deviations * 1e4 < sum_squares:
        deviations = math.fsum([(x - mean) ** 2 for x in window])
    return mean, math.sqrt(deviations / (size - 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.5, 2.25, 1e-300, 1.5000000000000002]), min_size=1, max_size=60),
       st.integers(min_value=2, max_value=6))
def test_a_window_finds_equal_values_as_max_and_min_would(values: list[float], size: int) -> None:
    """The window counts the last value instead of comparing max and min: same results, bit for bit."""
    window = _Window(size)
    for seen, value in enumerate(values, start=1):
        window.push(value)
        assert window.mean_std() == flat_by_max_and_min(values[:seen], size)
