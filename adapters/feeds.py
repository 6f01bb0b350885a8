"""Candle feeds for the paced (live) agent: the synthetic demo market or a file, one candle time at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone

from tradeledger.adapters.candlefiles import Given, load_files
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


def file_feed(data: Given) -> Iterator[Candle]:
    """The candles of one file or several (`adapters.candlefiles`: merged by time, then symbol)."""
    yield from load_files(data).candles


def synthetic_start(log: EventLogPort, timeframe: str, now: datetime, speed: float = 1.0) -> datetime:
    """Where the demo market begins: at its first recorded candle, so a restart regenerates the same
    series and skips what is recorded; on a fresh store a warm-up's worth of candles before now, times
    `speed` (so a faster demo has that much history to run through before it reaches now)."""
    first = log.first(Market.CandleClosed)
    if first is not None:
        start: datetime = first.event.open_time
        return start
    step = timeframe_delta(timeframe)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    floored = epoch + ((now - epoch) // step) * step
    return floored - round(WARMUP_CANDLES * max(speed, 1.0)) * step


def demo_clock(candles: Iterable[Candle], *, anchor: datetime, speed: float, clock: Callable[[], datetime],
               wait: Callable[[float], bool]) -> Iterator[Candle]:
    """The demo market's candles as its clock reaches their close, never ahead of the wall clock.

    The market clock is `anchor` (where this run resumes: the warm-up's end, or the last recorded close)
    plus `speed` times the wall time since the start, and at most the wall clock's now: a candle whose
    close is after now is not given yet. So at speed 1 it is one candle per candle time (a 5m candle every
    5 minutes), at speed N N candle times per candle time until it has caught up with now, then 1."""
    started = clock()
    for candle in candles:
        due = max(started + (candle.close_time - anchor) / speed, candle.close_time)
        while (left := (due - clock()).total_seconds()) > 0:
            if not wait(left):
                return
        yield candle


def live_feed(log: EventLogPort, *, symbols: tuple[str, ...], timeframe: str, seed: int, now: datetime,
              data: Given = None, speed: float = 1.0) -> Iterator[Candle]:
    """The paced agent's feed: files replayed as if live, or the synthetic demo market (unpaced here)."""
    if data:
        return file_feed(data)
    return synthetic_feed(symbols, timeframe, seed=seed, start=synthetic_start(log, timeframe, now, speed))
