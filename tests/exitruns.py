"""Backtests with exits or limit orders on a real candle file, through the CLI, and the events they recorded."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from tradeledger.adapters.cli import main
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.database import create_db_engine
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.account import Account
from tradeledger.domain.values import Candle, Side
from tests.conftest import CANDLES

ETH = CANDLES / "ETH_BTC-5m.csv"
FIVE_MINUTES = timedelta(minutes=5)
TICK = Decimal("1e-10")  # fill prices and levels are rounded to it
SLIPPAGE = Decimal(5) / 10_000  # the default trading.slippage_bps


@dataclass
class Trip:
    entry: Account.OrderFilled
    exit_order: Account.OrderPlaced
    exit: Account.OrderFilled


@dataclass
class Run:
    url: str
    result: dict[str, Any]  # backtest --json
    placed: dict[UUID, Account.OrderPlaced]
    fills: list[Account.OrderFilled]
    cancels: list[Account.OrderCancelled]
    candles: list[Candle]

    def candle_at(self, open_time: datetime) -> Candle:
        return self.by_time[open_time]

    def __post_init__(self) -> None:
        self.by_time = {c.open_time: c for c in self.candles}

    def trips(self) -> list[Trip]:
        trips, entry = [], None
        for fill in self.fills:
            if fill.side is Side.BUY:
                entry = fill
            else:
                assert entry is not None
                trips.append(Trip(entry=entry, exit_order=self.placed[fill.order_id], exit=fill))
        return trips

    def held(self, trip: Trip) -> list[Candle]:
        """The candles from the one the entry filled at up to (not including) the one the exit filled at."""
        return [c for c in self.candles if trip.entry.filled_at <= c.open_time < trip.exit.filled_at]


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def backtest(tmp_path: Path, settings: str, data: Path = ETH) -> Run:
    """`backtest --json` of sma_cross over `data` with the settings file `settings` (TOML text)."""
    path = tmp_path / "settings.toml"
    path.write_text(settings)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    code, out = cli("--settings", str(path), "--database", url, "backtest", "--data", str(data),
                    "--predictor", "sma_cross", "--json")
    assert code == 0, out
    log = EventLog(open_store(url), create_db_engine(url))
    try:
        events = [r.event for r in scan(log, types=[Account.OrderPlaced, Account.OrderFilled, Account.OrderCancelled])]
    finally:
        log.engine.dispose()
        log.store.close()
    return Run(url=url, result=json.loads(out), candles=load_candles(data).candles,
               placed={e.order_id: e for e in events if isinstance(e, Account.OrderPlaced)},
               fills=[e for e in events if isinstance(e, Account.OrderFilled)],
               cancels=[e for e in events if isinstance(e, Account.OrderCancelled)])


def audited(run: Run) -> None:
    """verify and reproduce (with the recorded settings) pass on the run's store."""
    assert cli("--database", run.url, "verify")[0] == 0
    code, out = cli("--database", run.url, "reproduce", "--json")
    assert code == 0, out
