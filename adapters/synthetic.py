"""The synthetic market: seeded demo candles for `--synthetic` runs, tests and benchmarks (never market data)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from tradeledger.domain.values import Candle, require_utc, timeframe_delta

_QUANTUM = Decimal("1e-8")


def synthetic_candles(symbol: str, timeframe: str, *, start: datetime, seed: int) -> Iterator[Candle]:
    """SYNTHETIC DEMO DATA, not market data: an endless seeded geometric random walk.

    Starts at 100 with 0.2% volatility per candle and a slight pull back
    towards 100, so it can run forever without drifting to zero. Each open is
    the previous close; high and low wrap open and close; all values are
    quantized to 8 places. Same seed, same candles: only `random.Random(seed)`
    is used.
    """
    step = timeframe_delta(timeframe)
    open_time = require_utc("start", start)
    rng = random.Random(seed)
    close = Decimal(100)
    while True:
        open_ = close
        level = float(open_)
        moved = level * math.exp(rng.gauss(0.0, 0.002) - 0.001 * math.log(level / 100))
        high = max(level, moved) * (1 + abs(rng.gauss(0.0, 0.001)))
        low = min(level, moved) * (1 - abs(rng.gauss(0.0, 0.001)))
        close = _quantize(moved)
        yield Candle(
            symbol=symbol, timeframe=timeframe, open_time=open_time,
            open=open_, high=_quantize(high), low=_quantize(low), close=close,
            volume=_quantize(rng.lognormvariate(3.0, 1.0)),
        )  # fmt: skip
        open_time += step


def _quantize(value: float) -> Decimal:
    return Decimal(value).quantize(_QUANTUM)
