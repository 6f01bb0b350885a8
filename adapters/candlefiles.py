"""The candle files of a backtest or file replay: one file, several, or a directory of them, as one feed.

`backtest --data A.csv --data B.csv` or `--data DIR` (every `.csv`, `.parquet` and `.json` file in DIR,
by name) trades every file's market in one account (docs/portfolios.md). Each file is read by
`adapters.marketdata.load_candles` with its own data report; the candles are merged by open time, and
candles of one open time by symbol, so the order never depends on how the files were given. A portfolio
trades one timeframe and one market per file: a second file of a market already given, or of another
timeframe, is refused naming both files.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tradeledger.adapters.inputfile import InputFile, input_file
from tradeledger.adapters.marketdata import MarketData, MarketDataError, load_candles
from tradeledger.domain.sessions import ALWAYS_OPEN
from tradeledger.domain.values import Candle

SUFFIXES = (".csv", ".parquet", ".json")
Given = str | Path | Sequence[str | Path] | None  # what `--data` gave: one path, several, or none


class CandleFile(msgspec.Struct, frozen=True, kw_only=True):
    path: Path
    data: MarketData


class CandleFiles(msgspec.Struct, frozen=True, kw_only=True):
    files: list[CandleFile]  # in the order given (a directory's files by name)
    candles: list[Candle]  # every file's, by (open time, symbol)

    @property
    def markets(self) -> list[MarketData]:
        return [f.data for f in self.files]

    def identities(self) -> list[InputFile]:
        """Each file's name and SHA-256, as `AgentRun.Started` records them; OSError when one cannot be read."""
        return [input_file(f.path) for f in self.files]


def candle_paths(given: Given) -> list[Path]:
    """The files `given` names: a directory stands for its candle files, sorted by name."""
    if given is None:
        return []
    paths: list[Path] = []
    for path in map(Path, [given] if isinstance(given, (str, Path)) else given):
        if not path.is_dir():
            paths.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            raise MarketDataError(path, f"a directory without candle files ({', '.join(SUFFIXES)})")
        paths.extend(found)
    return paths


def load_files(given: Given, *, symbol: str | None = None, timeframe: str | None = None,
               calendar: str = ALWAYS_OPEN.name) -> CandleFiles:
    """Every file read and checked (see the module docstring); `symbol`/`timeframe` only for one file."""
    paths = candle_paths(given)
    if len(paths) > 1 and (symbol or timeframe):
        raise MarketDataError(paths[1], "--symbol and --timeframe name the market of one file; with several "
                                        "files each file's name gives its own (ETH_BTC-5m.csv)")
    files: list[CandleFile] = []
    for path in paths:
        data = load_candles(path, symbol=symbol, timeframe=timeframe, calendar=calendar)
        refuse_clash(files, path, data)
        files.append(CandleFile(path=path, data=data))
    merged = heapq.merge(*(f.data.candles for f in files), key=lambda c: (c.open_time, c.symbol))
    return CandleFiles(files=files, candles=list(merged))


def refuse_clash(files: list[CandleFile], path: Path, data: MarketData) -> None:
    for other in files:
        if other.data.symbol == data.symbol:
            raise MarketDataError(path, f"holds {data.symbol} like {other.path.name}: give one file per market")
        if other.data.timeframe != data.timeframe:
            raise MarketDataError(path, f"holds {data.timeframe} candles, {other.path.name} "
                                        f"{other.data.timeframe}: a portfolio trades one timeframe")
