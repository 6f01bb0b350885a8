"""Incremental candle features for the predictors.

`FeatureEngine.update` turns one closed candle into a `Features` snapshot in
O(window) time, keeping only a few short deques. The same definitions are
computed vectorised by `tests/features_oracle.compute_features_frame`; a test
holds the two to within 1e-9 relative on real data, so change both together.

Definitions (t is the current candle, c its close, n the number of candles seen):

- `return_1` = c[t] / c[t-1] - 1, `log_return_1` = ln(c[t] / c[t-1])      (n >= 2)
- `sma_fast`, `sma_slow`: mean close of the last `fast` / `slow` candles   (n >= fast / slow)
- `prev_sma_fast`, `prev_sma_slow`: those values one candle earlier
- `sma_gap` = sma_fast / sma_slow - 1, the scale-free form of the SMA spread (n >= slow)
- `mean_return`, `std_return`: mean and sample standard deviation (ddof=1)
  of the last `window` values of `return_1`                               (n >= window + 1)
- `rsi`: simple-average RSI over the last `rsi_period` close changes:
  100 * G / (G + L) with G, L the sums of gains and of losses; 50 when the
  closes did not move at all                                              (n >= rsi_period + 1)
- `volume_z`: (volume - mean) / std of the last `window` volumes, ddof=1  (n >= window)
- `range_pct` = (high - low) / close                                      (always)

Window sums are exactly rounded (`math.fsum`): a flat market gives exactly
equal fast and slow SMAs, so rounding noise can never fake a crossover.

A feature that does not have enough history yet is 0.0 (never NaN), and
`ready` turns true once every feature has its history. A standard deviation
over a window of identical values is exactly 0, and a z-score over it is 0.

Gaps are not filled: a return across a gap spans several timeframes. Instead
`data_quality` is present / (present + missing) candles over the last `slow`
candles, so a strategy can distrust a signal computed across missing data.
Missing means missing while the market was open: the engine's `sessions`
(`domain.sessions`, 24/7 unless given) decide, so a weekend in stock data is
no gap.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

import msgspec

from tradeledger.domain.errors import CandleOutOfOrder, InvalidValue
from tradeledger.domain.sessions import ALWAYS_OPEN, Sessions
from tradeledger.domain.values import Candle, timeframe_delta

FEATURE_NAMES: tuple[str, ...] = (
    "return_1",
    "log_return_1",
    "sma_fast",
    "sma_slow",
    "prev_sma_fast",
    "prev_sma_slow",
    "sma_gap",
    "mean_return",
    "std_return",
    "rsi",
    "volume_z",
    "range_pct",
)


class Features(msgspec.Struct, frozen=True, kw_only=True):
    """The features of one candle, in `FEATURE_NAMES` order."""

    values: dict[str, float]
    ready: bool
    data_quality: float

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)


def _positive(field: str, value: int, minimum: int = 1) -> int:
    if not isinstance(value, int) or value < minimum:
        raise InvalidValue(field, value, f"expected an integer >= {minimum}")
    return value


class _Window:
    """The last `size` values and their squares, for a mean and a standard deviation."""

    __slots__ = ("size", "values", "squares")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque(maxlen=size)
        self.squares: deque[float] = deque(maxlen=size)

    def push(self, value: float) -> None:
        self.values.append(value)
        self.squares.append(value * value)

    def mean_std(self) -> tuple[float, float]:
        """Mean and sample std (ddof=1); (0, 0) until full; std 0 when all values are equal.

        Fast path: sums of the values and of their squares, taken afresh over
        the window (no running sums that drift). Its relative error is about
        1e-16 * sum(x²) / sum((x - mean)²), so when the spread is tiny next to
        the mean (ratio above 1e4) the deviations are summed directly instead.
        """
        values = self.values
        if len(values) < self.size:
            return 0.0, 0.0
        total = math.fsum(values)
        mean = total / self.size
        sum_squares = math.fsum(self.squares)
        deviations = sum_squares - total * mean
        # Equal values leave only rounding noise in `deviations` (all zeros: none), so they always take this
        # branch (the validated candle ranges keep the squares finite): the count runs here, not every tick.
        if deviations * 1e4 < sum_squares or not sum_squares:
            if values.count(values[-1]) == self.size:  # max(values) == min(values) in one pass, not two
                return mean, 0.0
            deviations = math.fsum([(x - mean) ** 2 for x in values])
        return mean, math.sqrt(deviations / (self.size - 1))


class FeatureEngine:
    """Feeds on one market's candles in time order; see the module docstring."""

    def __init__(
        self, fast: int = 10, slow: int = 20, window: int = 20, rsi_period: int = 14,
        sessions: Sessions = ALWAYS_OPEN,
    ) -> None:
        self.fast = _positive("fast", fast)
        self.sessions = sessions
        self.slow = _positive("slow", slow, minimum=2)
        if fast >= slow:
            raise InvalidValue("fast", fast, f"must be below slow ({slow})")
        self.window = _positive("window", window, minimum=2)
        self.rsi_period = _positive("rsi_period", rsi_period)
        self.warmup = max(slow, window, rsi_period) + 1
        self._fast_closes: deque[float] = deque(maxlen=fast)
        self._slow_closes: deque[float] = deque(maxlen=slow)
        self._returns = _Window(window)
        self._volumes = _Window(window)
        self._gains: deque[float] = deque(maxlen=rsi_period)
        self._losses: deque[float] = deque(maxlen=rsi_period)
        # Missing candles before each of the last slow-1 candles: the gaps inside the slow window.
        self._missing: deque[int] = deque(maxlen=slow - 1)
        self._count = 0
        self._timeframe = ""
        self._step = timedelta(0)
        self._last_time: datetime | None = None
        self._last_close = 0.0
        self._sma_fast = 0.0
        self._sma_slow = 0.0

    def update(self, candle: Candle) -> Features:
        quality = self._track_time(candle)
        close = float(candle.close)
        volume = float(candle.volume)
        self._count += 1
        return_1, log_return_1 = self._track_close(close)
        self._volumes.push(volume)
        prev_fast, prev_slow = self._sma_fast, self._sma_slow
        fast = self._sma_fast = self._sma(self._fast_closes)
        slow = self._sma_slow = self._sma(self._slow_closes)
        mean_return, std_return = self._returns.mean_std()
        values = (
            return_1,
            log_return_1,
            fast,
            slow,
            prev_fast,
            prev_slow,
            fast / slow - 1 if slow else 0.0,
            mean_return,
            std_return,
            self._rsi(),
            self._volume_z(volume),
            (float(candle.high) - float(candle.low)) / close,
        )
        return Features(
            values=dict(zip(FEATURE_NAMES, values)),
            ready=self._count >= self.warmup,
            data_quality=quality,
        )

    def _track_time(self, candle: Candle) -> float:
        """Reject a candle that is not later than the last one; return the data quality."""
        open_time = candle.open_time
        last_time = self._last_time
        if last_time is None:
            self._timeframe, self._step = candle.timeframe, timeframe_delta(candle.timeframe)
        elif candle.timeframe != self._timeframe:
            raise InvalidValue("timeframe", candle.timeframe, f"engine is fed {self._timeframe} candles")
        elif open_time <= last_time:
            raise CandleOutOfOrder(
                f"open_time {open_time.isoformat()} is not after the previous candle's {last_time.isoformat()}"
            )
        elif open_time - last_time == self._step:  # the usual case, without a division
            self._missing.append(0)
        else:
            self._missing.append(self.sessions.missing(last_time, open_time, self._step))
        self._last_time = open_time
        present = len(self._missing) + 1
        return present / (present + sum(self._missing))

    def _track_close(self, close: float) -> tuple[float, float]:
        """Push the close into every window; return (return_1, log_return_1)."""
        previous, self._last_close = self._last_close, close
        self._fast_closes.append(close)
        self._slow_closes.append(close)
        if self._count < 2:
            return 0.0, 0.0
        change = close - previous
        self._gains.append(max(change, 0.0))
        self._losses.append(max(-change, 0.0))
        ratio = close / previous
        self._returns.push(ratio - 1)
        return ratio - 1, math.log(ratio)

    @staticmethod
    def _sma(closes: deque[float]) -> float:
        return math.fsum(closes) / len(closes) if len(closes) == closes.maxlen else 0.0

    def _rsi(self) -> float:
        if len(self._gains) < self.rsi_period:
            return 0.0
        gains, losses = math.fsum(self._gains), math.fsum(self._losses)
        return 100.0 * gains / (gains + losses) if gains + losses > 0 else 50.0

    def _volume_z(self, volume: float) -> float:
        mean, std = self._volumes.mean_std()
        return (volume - mean) / std if std > 0 else 0.0
