"""Event append overhead: our write path vs the bare eventsourcing recorder.

Both sides append the same ticks (a candle and a signal per tick, an order and
a fill every tenth tick) to a fresh database of the same backend with the same
number of ticks per append. Ours maps each domain event with the msgspec
mapper, hash-chains it and inserts it (`LedgerStore.append`); the baseline
inserts already-encoded `StoredEvent`s of the same size with the library's
own recorder class (`recorder.insert_events`; on SQLite ours inserts with
one executemany, see `BatchInsertSQLiteRecorder`). Runs alternate; medians are reported; the ratio
(ours / bare time) is printed last. `--not-durable`: both sides open SQLite with `durable=False` (commits
without an fsync, `open_store`).

    .venv/bin/python scripts/bench_store.py [--ticks 5000] [--repeat 3] [--backend sqlite|postgres|both]
                                            [--not-durable]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tradeledger.adapters.database import upgrade  # noqa: E402
from eventsourcing.persistence import StoredEvent  # noqa: E402

from tradeledger.adapters.eventstore import (  # noqa: E402
    ChainedEventStore,
    LedgerStore,
    open_store,
    recorded_stamp,
    store_environment,
)
from tradeledger.adapters.services.ports import utcnow  # noqa: E402
from tradeledger.domain.account import Account  # noqa: E402
from tradeledger.domain.market import Market  # noqa: E402
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction, Side  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def make_ticks(count: int) -> list[list[object]]:
    """Domain events grouped per tick, produced by the real aggregates."""
    account = Account.open("bench", "BTC", Decimal("10"), at=START)
    market = Market.list("ETH/BTC", "5m", at=START)
    ticks: list[list[object]] = [[*account.collect_events(), *market.collect_events()]]
    decision = Decision(prediction=Prediction.UP, confidence=0.7, model_name="ensemble", model_version="1",
                        members=(MemberPrediction(name="a", prediction=Prediction.UP, confidence=0.7),))
    for i in range(count):
        at = START + timedelta(minutes=5 * i)
        price = Decimal("0.05") + Decimal(i % 100) / 10000
        market.close_candle(Candle(symbol="ETH/BTC", timeframe="5m", open_time=at, open=price, high=price,
                                   low=price, close=price, volume=Decimal("12.5")))
        market.generate_signal(decision, is_actionable=True, data_quality=1.0, features_used=("r", "s"),
                               feature_values={"r": 0.001, "s": 0.5})
        if i % 20 == 0:
            order = account.place_order("ETH/BTC", Side.BUY, Decimal("1"), at=at)
            account.fill_order(order, price=price, quantity=Decimal("1"), fee=Decimal("0.00005"), at=at)
        elif i % 20 == 10:
            order = account.place_order("ETH/BTC", Side.SELL, Decimal("1"), at=at)
            account.fill_order(order, price=price, quantity=Decimal("1"), fee=Decimal("0.00005"), at=at)
        ticks.append([*market.collect_events(), *account.collect_events()])
    return ticks


def batches(ticks: list[list[object]], per_append: int) -> Iterator[list[object]]:
    for i in range(0, len(ticks), per_append):
        yield [event for tick in ticks[i:i + per_append] for event in tick]


def stock_store(url: str, durable: bool = True) -> LedgerStore:
    """The same application on the library's own recorder class (the bare baseline)."""
    env = store_environment(url, durable=durable)
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    return LedgerStore(env=env)


@contextmanager
def fresh_store(backend: str, open_: Callable[..., LedgerStore] = open_store, durable: bool = True
                ) -> Iterator[LedgerStore]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.sqlite"
            upgrade(url)
            store = open_(url, durable=durable)
            yield store
            store.close()
        return
    name = f"tl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(f"{POSTGRES}/{name}")
        store = open_(f"{POSTGRES}/{name}")
        yield store
        store.close()
    finally:
        with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ours(store: LedgerStore, appends: list[list[object]]) -> float:
    started = time.perf_counter()
    for events in appends:
        store.append(events)
    return time.perf_counter() - started


def bare(store: LedgerStore, appends: list[list[object]]) -> float:
    # Same rows, already encoded and chained (so the bytes match), inserted directly.
    assert isinstance(store.events, ChainedEventStore)
    rows = [store.events.rows(events, recorded_stamp(utcnow())) for events in appends]
    encoded = [[StoredEvent(e.originator_id, version, topic, state) for e, (_, version, topic, state) in zip(events, r)]
               for events, r in zip(appends, rows)]
    started = time.perf_counter()
    for stored in encoded:
        store.recorder.insert_events(stored)
    return time.perf_counter() - started


def measure(backend: str, ticks: list[list[object]], per_append: int, repeat: int, durable: bool = True
            ) -> tuple[float, float]:
    appends = list(batches(ticks, per_append))
    events = sum(len(a) for a in appends)
    times: dict[Callable[..., float], list[float]] = {ours: [], bare: []}
    for _ in range(repeat):
        for path in (bare, ours):
            with fresh_store(backend, stock_store if path is bare else open_store, durable) as store:
                times[path].append(path(store, appends))
    return events / statistics.median(times[ours]), events / statistics.median(times[bare])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--not-durable", action="store_true", help="SQLite commits without an fsync")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    ticks = make_ticks(args.ticks)
    ratios = []
    for backend in backends:
        for per_append in (1, 10, 100):
            our_rate, bare_rate = measure(backend, ticks, per_append, args.repeat, not args.not_durable)
            ratios.append(bare_rate / our_rate)
            print(f"{backend:8} {per_append:>4} ticks/append: ours {our_rate:>9,.0f} ev/s  "
                  f"bare recorder {bare_rate:>9,.0f} ev/s  overhead {bare_rate / our_rate:.2f}x", flush=True)
    print(f"median overhead (ours time / bare recorder time): {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
