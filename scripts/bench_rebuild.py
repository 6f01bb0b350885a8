"""Benchmark: rebuild every read model from a 1,000,000-event SQLite log, against reading the log alone.

    .venv/bin/python scripts/bench_rebuild.py [--events N] [--runs R] [--path FILE]

Builds (or reuses, with --path) a SQLite store of synthetic trading: candles,
signals, orders, fills, halts, heartbeats and client sessions, thousands of
events per transaction. Then, alternating, R times each:
- baseline: read and decode the whole log through the recorder
  (`select_notifications` pages + `ChainedMapper.decode`), nothing else;
- rebuild: `tradeledger rebuild` (fold the log again into shadow tables of
  every read model and its tracking, then swap them in), exactly as the CLI
  does it.
Both run in this process with the same garbage-collector setting the CLI
uses. Prints events/s (median of the runs) for both; the last line is the
rebuild/baseline ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tradeledger.adapters.composition import Composition  # noqa: E402
from tradeledger.adapters.services import readmodels  # noqa: E402
from tradeledger.adapters.eventstore import ChainedMapper, LedgerStore, split_state  # noqa: E402
from scripts.synthetic_history import HistoryBuilder  # noqa: E402
from tradeledger.settings import load_settings  # noqa: E402

EVENTS_PER_TICK = 4.5  # two markets: candles, signals, and the orders, fills and housekeeping around them
PAGE = 5000


def build(container: Composition, events: int) -> None:
    have = container.store.head_position()
    if have >= events:
        print(f"reusing {have:,} events", flush=True)
        return
    if have:
        raise SystemExit(f"{container.url} holds {have:,} events, fewer than {events:,}: use a new --path")
    started = time.perf_counter()
    builder = HistoryBuilder(container.store)
    while container.store.head_position() < events:
        builder.extend(int((events - container.store.head_position()) / EVENTS_PER_TICK) + 1, ticks_per_save=2000)
    print(f"built {container.store.head_position():,} events in {time.perf_counter() - started:.1f}s", flush=True)


def read_and_decode(store: LedgerStore) -> int:
    count, after = 0, 0
    while page := store.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=False):
        for n in page:
            ChainedMapper.decode(n.topic, n.originator_id, n.originator_version, split_state(n.state)[1])
        count, after = count + len(page), page[-1].id
    return count


def timed_rate(run: object) -> float:
    started = time.perf_counter()
    events = run()  # type: ignore[operator]
    return float(events / (time.perf_counter() - started))


def measure(path: Path, events: int, runs: int) -> tuple[float, float]:
    """Median events/s of the baseline and of the rebuild, alternating runs."""
    baseline, rebuild = [], []
    with Composition(load_settings(overrides={"database.url": f"sqlite:///{path}"}, environ={})) as container:
        container.migrate()
        build(container, events)
        for run in range(runs):
            baseline.append(timed_rate(lambda: read_and_decode(container.store)))
            rebuild.append(timed_rate(lambda: readmodels.rebuild(container.feed, container.engine).events))
            print(f"run {run + 1}: baseline {baseline[-1]:,.0f} events/s, rebuild {rebuild[-1]:,.0f} events/s",
                  flush=True)
    return statistics.median(baseline), statistics.median(rebuild)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--path", type=Path, help="SQLite file to build or reuse (default: a temporary one)")
    args = parser.parse_args()
    readmodels.bulk_gc()  # as the CLI's rebuild does; the baseline runs with it too
    with tempfile.TemporaryDirectory(prefix="bench_rebuild_") as scratch:
        base, full = measure(args.path or Path(scratch) / "ledger.sqlite", args.events, args.runs)
    print(f"baseline (read + decode through the recorder): {base:,.0f} events/s (median of {args.runs})")
    print(f"rebuild of every read model: {full:,.0f} events/s (median of {args.runs})")
    print(f"rebuild/baseline ratio: {full / base:.2f}")


if __name__ == "__main__":
    main()
