"""`reproduce --data FILE`: is this the file the store's runs read, and are its candles the recorded ones?

Two facts per file (`--data` repeated, or a directory, checks a portfolio's files one by one): the file's
SHA-256 is one that every backtest or file replay recorded in `AgentRun.Started` (runs before 0.3
recorded none: then only the candles are compared), and the recorded candles of the file's market are
the file's candles as `load_candles` reads them (what the agent was given): the same open times and OHLCV,
in the same order. In a store of one market the file is read as that market whatever its name; in a
portfolio the file's name says which market it is (ETH_BTC-5m.csv: ETH/BTC 5m), and a file of a market
the store does not trade is a finding. A run stopped early recorded a prefix of the file, which is
reported and passes; a recorded candle the file does not have, or a differing one, is a finding naming it.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import msgspec

from tradeledger.adapters.candlefiles import Given, candle_paths
from tradeledger.adapters.inputfile import input_file
from tradeledger.adapters.marketdata import MarketDataError, load_candles
from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle

OHLCV = ("open", "high", "low", "close", "volume")
Recorded = list[tuple[int, Market.CandleClosed]]  # a market's recorded candles with their log positions


class DataUnreadable(ValueError):
    """The file cannot be read as candles (one line, exit 2)."""


class DataCheck(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    file: str
    sha256: str
    recorded_sha256: list[str]  # what the runs that read files recorded (empty: none recorded one)
    market: str  # SYMBOL TIMEFRAME
    recorded_candles: int
    file_candles: int
    findings: list[str]


def check_data(log: EventLogPort, given: Given) -> list[DataCheck]:
    """One check per file `given` names (a directory: its candle files)."""
    try:
        paths = candle_paths(given)
    except MarketDataError as error:
        raise DataUnreadable(str(error)) from None
    markets = {r.stream: r.event for r in scan(log, types=[Market.Listed])}
    runs = [r.event for r in scan(log, types=[AgentRun.Started]) if r.event.input_files()]
    recorded: dict[UUID, Recorded] = {}
    for r in scan(log, types=[Market.CandleClosed]):
        recorded.setdefault(r.stream, []).append((r.position, r.event))
    return [check_file(path, markets, runs, recorded) for path in paths]


def check_file(path: Path, markets: dict[UUID, Market.Listed], runs: list[AgentRun.Started],
               recorded: dict[UUID, Recorded]) -> DataCheck:
    try:
        identity = input_file(path)
    except OSError as error:
        raise DataUnreadable(f"cannot read {path}: {error.strerror or error}") from None
    only = next(iter(markets.values())) if len(markets) == 1 else None
    try:
        data = load_candles(path, symbol=None if only is None else only.symbol,
                            timeframe=None if only is None else only.timeframe)
    except MarketDataError as error:
        raise DataUnreadable(str(error)) from None
    findings = [f"the run started at {run.timestamp.isoformat()} read "
                + ", ".join(f"{f.name or 'a file'} of SHA-256 {f.sha256}" for f in run.input_files())
                + f"; {identity.name} is {identity.sha256}"
                for run in runs if identity.sha256 not in {f.sha256 for f in run.input_files()}]
    market = f"{data.symbol} {data.timeframe}"
    stream = next((s for s, m in markets.items() if f"{m.symbol} {m.timeframe}" == market), None)
    if stream is None and markets:
        traded = ", ".join(sorted(f"{m.symbol} {m.timeframe}" for m in markets.values()))
        findings.append(f"{identity.name} holds {market}, a market this store does not trade ({traded})")
    candles = recorded.get(stream, []) if stream is not None else []
    findings += candle_findings(candles, data.candles)
    return DataCheck(ok=not findings, file=identity.name, sha256=identity.sha256,
                     recorded_sha256=sorted({f.sha256 for run in runs for f in run.input_files()}),
                     market=market, recorded_candles=len(candles), file_candles=len(data.candles),
                     findings=findings)


def candle_findings(recorded: Recorded, candles: list[Candle]) -> list[str]:
    """The first recorded candle that is not the file's candle at the same place (empty: none)."""
    for index, (position, event) in enumerate(recorded):
        if index >= len(candles):
            return [f"recorded candle {index + 1} (open {event.open_time.isoformat()}, position {position}) is "
                    f"beyond the file's {len(candles)} candles"]
        candle = candles[index]
        if event.open_time != candle.open_time:
            return [f"recorded candle {index + 1} (position {position}) opens at {event.open_time.isoformat()}, "
                    f"the file's candle {index + 1} at {candle.open_time.isoformat()}"]
        differing = [f"{name} recorded {getattr(event, name)}, file {getattr(candle, name)}" for name in OHLCV
                     if getattr(event, name) != getattr(candle, name)]
        if differing:
            return [f"recorded candle {index + 1} (open {event.open_time.isoformat()}, position {position}) differs "
                    f"from the file's: {'; '.join(differing)}"]
    return []
