"""`tradeledger download`: an exchange's closed candles into one Parquet file per symbol and timeframe.

The file (`DIR/ETH_BTC-5m.parquet`) is what `backtest --data` reads: a `date`
column (datetime[ms, UTC], the candle's open time) and `open`, `high`, `low`,
`close`, `volume` (float64, exactly the numbers the exchange sent through ccxt).
A second run is resumable: it reads the file, fetches only the candles before
its first and after its last that the range asks for, and rewrites the file
atomically (a temporary file renamed over it), so a killed download leaves the
old file or the new one, never half of one. Nothing is invented: a candle the
exchange does not return is a gap, reported (`adapters.quality`) and left out.
If the exchange fails midway, what was fetched is kept and the error re-raised,
so the next run goes on from there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import msgspec

from tradeledger.adapters.exchange import MarketRules
from tradeledger.adapters.quality import QualityReport, find_gaps
from tradeledger.domain.sessions import ALWAYS_OPEN
from tradeledger.domain.values import Candle, timeframe_delta

# (symbol, candles fetched so far, candles expected at most); called after every page.
ProgressCall = Callable[[str, int, int], None]


class CandleSource(Protocol):
    """What `download` needs of an exchange (`adapters.exchange.Exchange`)."""

    def markets(self, symbols: Sequence[str]) -> dict[str, MarketRules]: ...

    def server_time(self) -> datetime: ...

    def closed_candles(self, symbol: str, timeframe: str, since: datetime, until: datetime | None = None
                       ) -> Iterator[Candle]: ...


class DownloadedFile(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    timeframe: str
    path: str
    candles: int  # in the file now
    fetched: int  # new in this run
    first: datetime | None
    last: datetime | None
    report: QualityReport  # gaps: what the exchange did not return between the file's candles
    rules: MarketRules  # the market's trading rules now, to backtest with (`market.*` settings)


def file_name(symbol: str, timeframe: str) -> str:
    """`ETH/BTC`, `5m` -> `ETH_BTC-5m.parquet`, which `adapters.marketdata` reads back as that symbol."""
    return f"{symbol.replace('/', '_')}-{timeframe}.parquet"


def download(exchange: CandleSource, symbols: Sequence[str], timeframe: str, *, since: datetime,
             until: datetime | None, out: Path, progress: ProgressCall | None = None) -> list[DownloadedFile]:
    rules = exchange.markets(symbols)  # first: an unknown symbol fails before anything is written
    out.mkdir(exist_ok=True)
    until = min(until, exchange.server_time()) if until is not None else exchange.server_time()
    return [download_one(exchange, rules[symbol], timeframe, since=since, until=until,
                         path=out / file_name(symbol, timeframe), progress=progress) for symbol in symbols]


def download_one(exchange: CandleSource, rules: MarketRules, timeframe: str, *, since: datetime, until: datetime,
                 path: Path, progress: ProgressCall | None) -> DownloadedFile:
    symbol = rules.symbol
    have = read_file(path, symbol, timeframe) if path.exists() else []
    step = timeframe_delta(timeframe)
    wanted = [(since, until)] if not have else [(since, min(until, have[0].open_time)),
                                                 (max(since, have[-1].open_time + step), until)]
    wanted = [(start, end) for start, end in wanted if start < end]
    expected = sum(-(-(end - start) // step) for start, end in wanted)
    fetched: list[Candle] = []
    try:
        for start, end in wanted:
            for candle in exchange.closed_candles(symbol, timeframe, start, end):
                fetched.append(candle)
                if progress is not None and len(fetched) % 100 == 0:
                    progress(symbol, len(fetched), expected)
    finally:  # also when the exchange failed midway: what came is kept, the next run goes on after it
        candles = merged(have, fetched)
        if fetched:
            write_file(path, candles)
    if progress is not None and expected:
        progress(symbol, len(fetched), expected)
    report = QualityReport(rows=len(candles), gaps=find_gaps(candles, step, ALWAYS_OPEN), duplicates=[],
                           out_of_order=[], invalid=[], calendar=ALWAYS_OPEN.name)
    return DownloadedFile(symbol=symbol, timeframe=timeframe, path=str(path), candles=len(candles),
                          fetched=len(fetched), first=candles[0].open_time if candles else None,
                          last=candles[-1].open_time if candles else None, report=report, rules=rules)


def merged(have: Sequence[Candle], fetched: Iterable[Candle]) -> list[Candle]:
    by_time = {candle.open_time: candle for candle in fetched}
    by_time.update({candle.open_time: candle for candle in have})  # what the file holds is never rewritten
    return [by_time[moment] for moment in sorted(by_time)]


def read_file(path: Path, symbol: str, timeframe: str) -> list[Candle]:
    from tradeledger.adapters.marketdata import load_candles  # polars: only when there is a file

    return load_candles(path, symbol=symbol, timeframe=timeframe).candles


def write_file(path: Path, candles: Sequence[Candle]) -> None:
    import polars as pl  # slow to import: only `download` and the file readers need it

    frame = pl.DataFrame({
        "date": pl.Series([c.open_time for c in candles], dtype=pl.Datetime("ms", "UTC")),
        **{name: pl.Series([float(getattr(c, name)) for c in candles], dtype=pl.Float64)
           for name in ("open", "high", "low", "close", "volume")},
    })
    temporary = path.with_name(f".{path.name}.partial")
    frame.write_parquet(temporary)
    os.replace(temporary, path)  # atomic: readers see the old file or the new one
