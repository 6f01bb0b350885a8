"""Candle feeds for the paced (live) agent: the synthetic demo market or a file, one candle time at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.synthetic import synthetic_candles
from tradeledger.adapters.services.ports import EventLogPort
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, timeframe_delta

WARMUP_CANDLES = 120


def synthetic_feed(symbols: tuple[str, ...], timeframe: str, *, seed: int, start: datetime) -> Iterator[Candle]:
    """Every symbol's next candle for each candle time, in a fixed order (SYNTHETIC DEMO DATA)."""
    walks = [synthetic_candles(symbol, timeframe, start=start, seed=seed * 1000 + i) for i, symbol in enumerate(symbols)]
    while True:
        for walk in walks:
            yield next(walk)


def file_feed(path: str) -> Iterator[Candle]:
    yield from load_candles(path).candles


def synthetic_start(log: EventLogPort, timeframe: str, now: datetime) -> datetime:
    """Where the demo market begins: at its first recorded candle, so a restart regenerates the same
    series and skips what is recorded; on a fresh store a warm-up's worth of candles before now."""
    first = log.first(Market.CandleClosed)
    if first is not None:
        start: datetime = first.event.open_time
        return start
    step = timeframe_delta(timeframe)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    floored = epoch + ((now - epoch) // step) * step
    return floored - WARMUP_CANDLES * step


def live_feed(log: EventLogPort, *, symbols: tuple[str, ...], timeframe: str, seed: int, now: datetime,
              data: str | None = None) -> Iterator[Candle]:
    """The paced agent's feed: a file replayed as if live, or the synthetic demo market."""
    if data is not None:
        return file_feed(data)
    return synthetic_feed(symbols, timeframe, seed=seed, start=synthetic_start(log, timeframe, now))
