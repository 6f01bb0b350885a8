"""A vectorised (polars) twin of `domain.features.FeatureEngine`: the oracle test_features checks the engine with."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from tradeledger.adapters.marketdata import VALUE_COLUMNS
from tradeledger.domain.features import FEATURE_NAMES, FeatureEngine
from tradeledger.domain.values import Candle


def candles_frame(candles: Sequence[Candle]) -> pl.DataFrame:
    """Candles as a polars frame: `open_time` (UTC) and float OHLCV, the input of compute_features_frame."""
    columns = {name: [float(getattr(candle, name)) for candle in candles] for name in VALUE_COLUMNS}
    times = pl.Series("open_time", [candle.open_time for candle in candles], dtype=pl.Datetime("us", "UTC"))
    return pl.DataFrame(columns).insert_column(0, times)


def compute_features_frame(
    df: pl.DataFrame, fast: int = 10, slow: int = 20, window: int = 20, rsi_period: int = 14
) -> pl.DataFrame:
    """`df` plus one column per feature and `ready`: the vectorised twin of `FeatureEngine`.

    Definitions are in `domain.features` (RSI is the simple-average one:
    100 * G / (G + L) over the last `rsi_period` close changes, 50 when flat);
    values without enough history are 0.0, as the engine reports them.
    """
    warmup = FeatureEngine(fast, slow, window, rsi_period).warmup  # the same validation and warm-up
    close, volume = pl.col("close").cast(pl.Float64), pl.col("volume").cast(pl.Float64)
    ratio = close / close.shift(1)
    returns = ratio - 1
    sma_fast, sma_slow = close.rolling_mean(fast), close.rolling_mean(slow)
    change = close.diff()
    gains = change.clip(lower_bound=0.0).rolling_sum(rsi_period)
    losses = (-change).clip(lower_bound=0.0).rolling_sum(rsi_period)
    volume_std = _rolling_std(volume, window)
    features = {
        "return_1": returns,
        "log_return_1": ratio.log(),
        "sma_fast": sma_fast,
        "sma_slow": sma_slow,
        "prev_sma_fast": sma_fast.shift(1),
        "prev_sma_slow": sma_slow.shift(1),
        "sma_gap": sma_fast / sma_slow - 1,
        "mean_return": returns.rolling_mean(window),
        "std_return": _rolling_std(returns, window),
        "rsi": (100.0 * gains / (gains + losses)).fill_nan(50.0),  # NaN only from 0/0: no move at all
        "volume_z": pl.when(volume_std > 0).then((volume - volume.rolling_mean(window)) / volume_std),
        "range_pct": (pl.col("high").cast(pl.Float64) - pl.col("low").cast(pl.Float64)) / close,
    }
    return df.with_columns(
        *(features[name].fill_null(0.0).alias(name) for name in FEATURE_NAMES),
        ready=pl.int_range(pl.len()) >= warmup - 1,
    )


def _rolling_std(values: pl.Expr, window: int) -> pl.Expr:
    """Sample std (ddof=1), exactly 0 over identical values, as the engine defines it."""
    constant = values.rolling_max(window) == values.rolling_min(window)
    return pl.when(constant).then(0.0).otherwise(values.rolling_std(window))
