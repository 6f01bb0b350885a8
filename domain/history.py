"""What a user strategy sees: the closed candles of its market, at most `lookback` of them, oldest first.

A strategy (docs/strategies.md) is handed a `History`, never a candle feed, the trader or the store: the
window is filled by the feature engine as each candle closes (`HistoryEngine.update`), before the
predictor is asked, so its last item is the candle that just closed and nothing later can be in it.
A `History` is a snapshot of immutable tuples: a strategy that keeps one sees it unchanged later.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import msgspec

from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.features import FeatureEngine, Features
from tradeledger.domain.values import Candle

FIELDS = ("open", "high", "low", "close", "volume")


class History(msgspec.Struct, frozen=True, kw_only=True):
    """The last closed candles, one tuple of Decimal per field, oldest first; all of equal length."""

    open: tuple[Decimal, ...]
    high: tuple[Decimal, ...]
    low: tuple[Decimal, ...]
    close: tuple[Decimal, ...]
    volume: tuple[Decimal, ...]

    def __len__(self) -> int:
        return len(self.close)


class CandleWindow:
    """The last `size` closed candles of one market."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidValue("lookback", size, "expected an integer >= 1")
        self.size = size
        self._fields = {name: deque[Decimal](maxlen=size) for name in FIELDS}
        self.last: Candle | None = None  # the candle that closed last (the one a decision is about)

    def push(self, candle: Candle) -> None:
        for name, values in self._fields.items():
            values.append(getattr(candle, name))
        self.last = candle

    @property
    def full(self) -> bool:
        return len(self._fields["close"]) == self.size

    def snapshot(self) -> History:
        return History(**{name: tuple(values) for name, values in self._fields.items()})


class HistoryEngine(FeatureEngine):
    """The usual features (and data quality) plus the strategy's window of closed candles.

    `ready` (so an actionable signal) starts when the window holds `lookback` candles: the strategy said
    how much history it needs, and the engine's own warm-up is for features a strategy does not get.
    """

    def __init__(self, lookback: int, **engine: object) -> None:
        super().__init__(**engine)  # type: ignore[arg-type]
        self.window = CandleWindow(lookback)
        self.warmup = lookback

    def update(self, candle: Candle) -> Features:
        features = super().update(candle)  # first: it refuses a candle out of order
        self.window.push(candle)
        return features
