"""Backtest throughput, end to end with every event persisted to a SQLite file.

The real ETH/BTC 5m file is repeated (shifted in time) to at least --candles
candles. For each predictor the same agent loop runs twice per repeat: the
baseline decides every tick on in-memory aggregates and drops the events
(persistence off); the measured run is `tradeledger backtest`'s path, appending
every candle, signal, order and fill to a fresh SQLite file. Medians; the
ratio (persisted rate / in-memory rate) is printed last.

    .venv/bin/python scripts/bench_backtest.py [--candles 103680] [--repeat 3] [--predictor sma_cross ensemble]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from tradeledger.adapters.lease import lease_for  # noqa: E402
from tradeledger.adapters.services.trading import TradingSession  # noqa: E402
from tradeledger.adapters.traders import build_trader  # noqa: E402
from tradeledger.adapters.database import create_db_engine, upgrade  # noqa: E402
from tradeledger.adapters.eventlog import EventLog  # noqa: E402
from tradeledger.adapters.eventstore import open_store  # noqa: E402
from tradeledger.adapters.marketdata import load_candles  # noqa: E402
from tradeledger.domain.account import Account  # noqa: E402
from tradeledger.domain.market import Market  # noqa: E402
from tradeledger.domain.values import Candle  # noqa: E402
from tradeledger.settings import Settings, load_settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "candles" / "ETH_BTC-5m.csv"


def repeated_candles(count: int) -> list[Candle]:
    base = load_candles(DATA).candles
    span = base[-1].open_time - base[0].open_time + timedelta(minutes=5)
    candles: list[Candle] = []
    for copy in range(count // len(base) + 1):
        shift = span * copy
        candles.extend(msgspec.structs.replace(c, open_time=c.open_time + shift) for c in base)
    return candles[:count]


def in_memory(settings: Settings, candles: list[Candle]) -> float:
    trader = build_trader(settings)
    account = Account.open("bench", "BTC", settings.trading.initial_balance, at=candles[0].open_time)
    market = Market.list(candles[0].symbol, candles[0].timeframe, at=candles[0].open_time)
    started = time.perf_counter()
    for candle in candles:
        trader.trade(candle, trader.observe(candle), market, account)
        market.collect_events()
        account.collect_events()
    return time.perf_counter() - started


def persisted(settings: Settings, candles: list[Candle]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite"
        upgrade(url)
        store = open_store(url)
        engine = create_db_engine(url)
        started = time.perf_counter()
        at_url = msgspec.structs.replace(settings, database=msgspec.structs.replace(settings.database, url=url))
        agent = TradingSession(EventLog(store, engine), at_url, lambda: build_trader(at_url), lease_for(url))
        agent.resume()
        agent.start(("bench",))
        agent.run_feed(candles, batch_size=2000)
        agent.stop("done")
        elapsed = time.perf_counter() - started
        engine.dispose()
        store.close()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candles", type=int, default=103_680)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--predictor", nargs="+", default=["sma_cross", "ensemble"])
    args = parser.parse_args()
    candles = repeated_candles(args.candles)
    lines = []
    for predictor in args.predictor:
        settings = load_settings(overrides={"predictor.name": predictor})
        base, ours = [], []
        for _ in range(args.repeat):
            base.append(in_memory(settings, candles))
            ours.append(persisted(settings, candles))
        base_rate, our_rate = len(candles) / statistics.median(base), len(candles) / statistics.median(ours)
        line = (f"{predictor:10} {len(candles):,} candles: persisted {our_rate:>8,.0f} candles/s, "
                f"in-memory baseline {base_rate:>8,.0f} candles/s, ratio {our_rate / base_rate:.2f}")
        print(line, flush=True)
        lines.append(line)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {peak_mb:,.0f} MB")
    print(lines[0] if len(lines) == 1 else "\n".join(lines))


if __name__ == "__main__":
    main()
