"""Restart time: from `tradeledger backtest` process start to its first new candle recorded, on a big store.

The store is built once, in process, through the agent's own session: `sma_cross` over the real ETH/BTC 5m
file repeated (shifted in time) to --candles candles, with state checkpoints every `agent.checkpoint_every`
candles (default 10,000) and on the stop. Each trial then starts the real CLI, `backtest --data` of a file
holding the next candle only, and waits (polling the store) until that candle is recorded: interpreter
start, imports, migration check, warm-up (the latest checkpoint and the log after it) and the tick. The
process is then killed, so the summary (a pass over the whole log) is not timed. The baseline is the same
trial on the same store with the checkpoints' blobs deleted first, so the warm-up replays every event.
Medians; the figure (baseline / with checkpoints) is printed last.

    .venv/bin/python scripts/bench_restart.py [--candles 1000000] [--trials 3] [--baseline-trials 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from scripts.bench_backtest import repeated_candles  # noqa: E402
from tradeledger.adapters.composition import Composition  # noqa: E402
from tradeledger.adapters.markets import data_settings  # noqa: E402
from tradeledger.adapters.marketdata import load_candles  # noqa: E402
from tradeledger.domain.market import Market  # noqa: E402
from tradeledger.domain.values import Candle  # noqa: E402
from tradeledger.settings import load_settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "candles" / "ETH_BTC-5m.csv"
CANDLE_TOPIC = f"{Market.CandleClosed.__module__}:{Market.CandleClosed.__qualname__}"
NEW_CANDLE = sa.text("SELECT count(*) FROM stored_events WHERE rowid > :after AND topic = :topic")
POLL_SECONDS = 0.002
DEADLINE = 900.0  # seconds a trial may take before the benchmark gives up


def build(url: str, candles: list[Candle]) -> float:
    """The store: the agent's session over `candles`, checkpointing as configured; seconds it took."""
    settings = data_settings(load_settings(overrides={"database.url": url, "predictor.name": "sma_cross"},
                                           environ={}), [load_candles(DATA)])
    started = time.perf_counter()
    with Composition(settings) as root:
        root.migrate()
        agent = root.agent(settings)
        agent.resume()
        agent.start(("backtest",))
        agent.run_feed(candles, batch_size=5000)
        agent.stop("store built")
    return time.perf_counter() - started


def write_candle(path: Path, candle: Candle) -> None:
    path.write_text("date,open,high,low,close,volume\n"
                    f"{candle.open_time.strftime('%Y-%m-%dT%H:%M:%SZ')},{candle.open},{candle.high},{candle.low},"
                    f"{candle.close},{candle.volume}\n")


def trial(url: str, engine: sa.Engine, candle: Candle, directory: Path) -> float:
    """Seconds from starting `tradeledger backtest` on the next candle to that candle in the store."""
    data = directory / "ETH_BTC-5m.csv"
    write_candle(data, candle)
    with engine.connect() as conn:
        after = conn.execute(sa.text("SELECT max(rowid) FROM stored_events")).scalar_one()
    command = [sys.executable, "-m", "tradeledger.adapters.cli", "--database", url, "backtest", "--data", str(data),
               "--predictor", "sma_cross"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "TRADELEDGER_AGENT__CHECKPOINT_EVERY": "10000"})
    try:
        while True:
            with engine.connect() as conn:
                if conn.execute(NEW_CANDLE, {"after": after, "topic": CANDLE_TOPIC}).scalar_one():
                    return time.perf_counter() - started
            if process.poll() is not None:
                raise RuntimeError(f"the backtest exited ({process.returncode}) before its candle: "
                                   f"{process.stderr.read().decode() if process.stderr else ''}")
            if time.perf_counter() - started > DEADLINE:
                raise RuntimeError("the restart did not trade within the deadline")
            time.sleep(POLL_SECONDS)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()


def drop_blobs(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM state_checkpoints"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--baseline-trials", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the store in this directory and leave it there")
    args = parser.parse_args()
    candles = repeated_candles(args.candles + args.trials + args.baseline_trials)
    stored, new = candles[:args.candles], iter(candles[args.candles:])
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        url = f"sqlite:///{directory / 'restart.sqlite'}"
        print(f"building a store of {len(stored):,} candles ...", flush=True)
        print(f"built in {build(url, stored):.1f}s ({(directory / 'restart.sqlite').stat().st_size / 1e6:,.0f} MB)",
              flush=True)
        engine = sa.create_engine(url)
        with_checkpoints = []
        for _ in range(args.trials):
            with_checkpoints.append(trial(url, engine, next(new), directory))
            print(f"  with checkpoints: {with_checkpoints[-1]:.2f}s", flush=True)
        baseline = []
        for _ in range(args.baseline_trials):
            drop_blobs(engine)
            baseline.append(trial(url, engine, next(new), directory))
            print(f"  full replay:      {baseline[-1]:.2f}s", flush=True)
        engine.dispose()
    fast = statistics.median(with_checkpoints)
    slow = statistics.median(baseline) if baseline else float("nan")
    print(f"restart on {args.candles:,} candles, process start to the first new candle recorded (median): "
          f"full replay {slow:.2f}s, from the latest checkpoint {fast:.2f}s")
    print(f"speed-up {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
