"""Notary throughput: leaves per second added to the Merkle tree, against the read + decode baseline.

    .venv/bin/python -m scripts.bench_notary [--ticks 20000] [--backend sqlite|postgres]

Builds a synthetic history (scripts/synthetic_history), then times (a) reading every stored row and decoding its
two clocks (what any reader of the log pays), (b) the notary from an empty tree to the head (read, leaf bytes,
SHA-256, frontier, storing every leaf hash), (c) a second notary pass with nothing new (the cost of a restart).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from scripts.synthetic_history import build_history
from tradeledger.adapters.database import upgrade
from tradeledger.adapters.eventstore import DIGEST_SIZE, recorded_times
from tradeledger.settings import load_settings
from tests.composing import composed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--url", help="a fresh database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/bench.sqlite"
        upgrade(url)
        with composed(load_settings(overrides={"database.url": url}, environ={})) as container:
            build_history(container.store, args.ticks)
            started = time.perf_counter()
            events = sum(1 for row in container.feed.scan_stored()
                         if recorded_times(row.state[DIGEST_SIZE:]) is not None)  # type: ignore[index]
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            size = container.notary.advance()
            notary = time.perf_counter() - started
            started = time.perf_counter()
            container.notary.advance()
            again = time.perf_counter() - started
    print(f"{events:,} events; read + decode clocks: {events / baseline:,.0f} events/s ({baseline:.2f}s)")
    print(f"notary from empty to {size:,} leaves: {size / notary:,.0f} leaves/s ({notary:.2f}s)")
    print(f"notary with nothing new (a restart): {again * 1000:.1f} ms")


if __name__ == "__main__":
    main()
