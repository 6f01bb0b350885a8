"""Backtest throughput: the phases in-process, and the whole `tradeledger backtest` process.

The real ETH/BTC 5m file is repeated (shifted in time) to --candles candles and
written once to a CSV. For each predictor, per repeat: `load` reads that file
(`load_files`, as the CLI does); the in-memory baseline decides every tick on
in-memory aggregates and drops the events (persistence off); `loop` is
`tradeledger backtest`'s path, appending every candle, signal, order and fill
to a fresh SQLite file, the summary's folds fed at each append (as `backtest.run`);
`summary` is what is left: the summary from those folds.
Then the whole CLI process runs on the same file (`bench_process.py`: wall
time, peak RSS, `import`), with `--before REV` also an earlier commit's, so the
phases import, load, loop and summary show against the wall time. Medians; the
ratio (persisted rate / in-memory rate) is printed after the phases, the
whole-process figures last.

    .venv/bin/python scripts/bench_backtest.py [--candles 103680] [--repeat 3] [--predictor sma_cross ensemble]
                                               [--before REV [REV ...]]
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
sys.path.insert(0, str(ROOT / "scripts"))

import msgspec  # noqa: E402

import bench_process  # noqa: E402
from tradeledger.adapters.candlefiles import load_files  # noqa: E402
from tradeledger.adapters.lease import lease_for  # noqa: E402
from tradeledger.adapters.services.backtest import summary  # noqa: E402
from tradeledger.adapters.services.history_tap import tapped  # noqa: E402
from tradeledger.adapters.services.metrics_log import HistoryLog  # noqa: E402
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


def persisted(settings: Settings, candles: list[Candle]) -> tuple[float, float]:
    """Seconds of the loop (every event appended) and of the summary read back from that store."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite"
        upgrade(url)
        store = open_store(url)
        engine = create_db_engine(url)
        started = time.perf_counter()
        at_url = msgspec.structs.replace(settings, database=msgspec.structs.replace(settings.database, url=url))
        agent = TradingSession(EventLog(store, engine), at_url, lambda: build_trader(at_url), lease_for(url))
        history = HistoryLog(EventLog(store, engine), at_url.trading.account)
        agent.resume()
        with tapped(agent, history):  # as backtest.run: the summary's folds fed at each append
            agent.start(("bench",))
            agent.run_feed(candles, batch_size=2000)
            agent.stop("done")
        elapsed = time.perf_counter() - started
        summary(history.history(), len(candles), elapsed)
        summarised = time.perf_counter() - started - elapsed
        engine.dispose()
        store.close()
        return elapsed, summarised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_process.add_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, bench_process.worktrees(args.before, Path(folder)) as sides:
        data = bench_process.repeated_file(args.candles, Path(folder))
        lines = [phases(predictor, data, args.repeat) for predictor in args.predictor]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process {peak_mb:,.0f} MB")
        print("\n".join(lines), flush=True)
        figures = bench_process.measure(sides, data, args, Path(folder))
    bench_process.report(figures, args.candles)


def phases(predictor: str, data: Path, repeat: int) -> str:
    """The in-process phases of one predictor (medians); prints them and returns the throughput line."""
    settings = load_settings(overrides={"predictor.name": predictor})
    loads, base, ours, summaries = [], [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        candles = load_files(data).candles
        loads.append(time.perf_counter() - started)
        base.append(in_memory(settings, candles))
        loop, summary = persisted(settings, candles)
        ours.append(loop)
        summaries.append(summary)
    base_rate, our_rate = len(candles) / statistics.median(base), len(candles) / statistics.median(ours)
    print(f"{predictor:10} phases (medians): load {statistics.median(loads):.2f} s, loop "
          f"{statistics.median(ours):.2f} s, summary {statistics.median(summaries):.2f} s", flush=True)
    line = (f"{predictor:10} {len(candles):,} candles: persisted {our_rate:>8,.0f} candles/s, "
            f"in-memory baseline {base_rate:>8,.0f} candles/s, ratio {our_rate / base_rate:.2f}")
    print(line, flush=True)
    return line


if __name__ == "__main__":
    main()
