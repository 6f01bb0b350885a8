"""`reproduce --data FILE`: is this the file the store's runs read, and are its candles the recorded ones?

Two facts: the file's SHA-256 equals the one every backtest or file replay
recorded in `AgentRun.Started` (runs before 0.3 recorded none: then only the
candles are compared), and the recorded candles of the file's market are the
file's candles as `load_candles` reads them (what the agent was given): the same
open times and OHLCV, in the same order. A run stopped early recorded a prefix
of the file, which is reported and passes; a recorded candle the file does not
have, or a differing one, is a finding naming it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from tradeledger.adapters.inputfile import input_file
from tradeledger.adapters.marketdata import MarketDataError, load_candles
from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle

OHLCV = ("open", "high", "low", "close", "volume")


class DataUnreadable(ValueError):
    """The file cannot be read as candles (one line, exit 2)."""


class DataCheck(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    file: str
    sha256: str
    recorded_sha256: list[str]  # what the runs that read a file recorded (empty: none recorded one)
    market: str  # SYMBOL TIMEFRAME
    recorded_candles: int
    file_candles: int
    findings: list[str]


def check_data(log: EventLogPort, path: str | Path) -> DataCheck:
    try:
        identity = input_file(path)
    except OSError as error:
        raise DataUnreadable(f"cannot read {path}: {error.strerror or error}") from None
    markets = {r.stream: r.event for r in scan(log, types=[Market.Listed])}
    if len(markets) > 1:
        raise DataUnreadable(f"this store trades {len(markets)} markets; --data checks a store of one")
    listed = next(iter(markets.values()), None)
    try:
        data = load_candles(path, symbol=None if listed is None else listed.symbol,
                            timeframe=None if listed is None else listed.timeframe)
    except MarketDataError as error:
        raise DataUnreadable(str(error)) from None
    runs = [r.event for r in scan(log, types=[AgentRun.Started]) if r.event.data_sha256]
    findings = [f"the run started at {run.timestamp.isoformat()} read {run.data_file or 'a file'} of SHA-256 "
                f"{run.data_sha256}; {identity.name} is {identity.sha256}"
                for run in runs if run.data_sha256 != identity.sha256]
    recorded = [(r.position, r.event) for r in scan(log, types=[Market.CandleClosed])]
    findings += candle_findings(recorded, data.candles)
    return DataCheck(ok=not findings, file=identity.name, sha256=identity.sha256,
                     recorded_sha256=sorted({run.data_sha256 for run in runs}),
                     market=f"{data.symbol} {data.timeframe}", recorded_candles=len(recorded),
                     file_candles=len(data.candles), findings=findings)


def candle_findings(recorded: list[tuple[int, Market.CandleClosed]], candles: list[Candle]) -> list[str]:
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
