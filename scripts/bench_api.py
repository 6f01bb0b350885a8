"""REST read latency and throughput against one uvicorn worker, with a trivial endpoint as the baseline.

A store with a trading history (the real agent on the synthetic market, projected) is served by
`tradeledger serve` in its own process: one uvicorn worker. The baseline, measured in the same
run with the same load generator, is a Litestar app with one constant endpoint under the same
uvicorn settings, also in its own process. Per endpoint:

- latency at a fixed arrival rate (open loop, default 1,000 requests/s): each request's time is
  measured from when it was due, so a stalled server cannot hide its queue;
- throughput with a fixed number of requests in flight (closed loop).

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams: httpx costs
about 1.5 ms of client CPU per request, which on a 2-core machine capped even the baseline
at about 600 requests/s.

    .venv/bin/python scripts/bench_api.py [--rate 1000] [--seconds 5] [--candles 3000]

The figures are printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from litestar import Litestar, get

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tradeledger.adapters.api.server import serve_foreground  # noqa: E402
from tradeledger.adapters.composition import Composition  # noqa: E402
from tradeledger.adapters.synthetic import synthetic_candles  # noqa: E402
from tradeledger.projections.runner import ProjectionRunner  # noqa: E402
from tradeledger.settings import load_settings  # noqa: E402

ENDPOINTS = ("/api/portfolio", "/api/positions", "/api/fills?limit=50", "/api/signals/ETH-BTC",
             "/api/equity?limit=500", "/api/health")
BASELINE = "/ping"
IN_FLIGHT = 32


@get(BASELINE, sync_to_thread=False)
def ping() -> dict[str, bool]:
    return {"ok": True}


def baseline_server() -> None:
    """`bench_api.py --baseline`: the trivial app, under the same uvicorn settings as ours."""
    serve_foreground(Litestar([ping]), host="127.0.0.1", port=0, heartbeat_interval=5.0,
                     on_started=lambda url: print(f"dashboard: {url}", flush=True), on_exit=lambda: None)


def seed(url: str, candles: int) -> None:
    settings = load_settings(overrides={"database.url": url, "predictor.name": "sma_cross"})
    with Composition(settings) as container:
        container.migrate()
        agent = container.agent(settings)
        agent.resume()
        agent.start(("bench",))
        feed = synthetic_candles("ETH/BTC", "5m", start=datetime(2024, 1, 1, tzinfo=timezone.utc), seed=3)
        agent.run_feed(itertools.islice(feed, candles), batch_size=500)
        agent.stop("seeded")
        ProjectionRunner(container.feed, container.engine).catch_up()


@contextmanager
def process(*args: str) -> Iterator[str]:
    """A server process that prints `dashboard: URL` when listening; yields the base URL."""
    child = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TRADELEDGER_API__TOKEN": ""})
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("dashboard: "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield line.removeprefix("dashboard: ").strip().rstrip("/")
    finally:
        child.terminate()
        child.wait()


class Connection:
    """One keep-alive HTTP/1.1 connection: GET, read the status line, headers and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await self.reader.readexactly(length)
        return status


class Pool:
    """Idle connections to one server; opens another whenever all are busy (open-loop load needs that)."""

    def __init__(self, base: str) -> None:
        self.host, port = base.removeprefix("http://").split(":")
        self.port = int(port)
        self.idle: list[Connection] = []
        self.opened: list[Connection] = []

    async def get(self, path: str) -> int:
        connection = self.idle.pop() if self.idle else await self.open()
        status = await connection.get(path)
        self.idle.append(connection)
        return status

    async def open(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        connection = Connection(reader, writer, f"{self.host}:{self.port}")
        self.opened.append(connection)
        return connection

    def close(self) -> None:
        for connection in self.opened:
            connection.writer.close()


async def fixed_rate(pool: Pool, path: str, rate: float, seconds: float) -> list[float]:
    """Latencies (ms) of requests sent at `rate` per second, each measured from when it was due."""
    latencies: list[float] = []

    async def one(due: float) -> None:
        if await pool.get(path) != 200:
            raise RuntimeError(f"{path}: not 200")
        latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return latencies


async def closed_loop(pool: Pool, path: str, seconds: float) -> float:
    """Requests per second with IN_FLIGHT requests always outstanding."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            if await pool.get(path) != 200:
                raise RuntimeError(f"{path}: not 200")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return done / (time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=1000)[int(share * 1000) - 1]


async def measure(base: str, path: str, rate: float, seconds: float) -> tuple[float, float, float]:
    pool = Pool(base)
    try:
        for _ in range(200):  # warm up the connection and the server's caches
            await pool.get(path)
        latencies = await fixed_rate(pool, path, rate, seconds)
        throughput = await closed_loop(pool, path, seconds)
    finally:
        pool.close()
    return statistics.median(latencies), percentile(latencies, 0.99), throughput


def quiet_collector() -> None:
    """Keep the load generator's own garbage collection out of the measurement.

    Seeding imported the agent's libraries: a full collection of this process then paused it
    for about 90 ms, which showed up as server latency (requests are timed from when they
    were due). Freeze what exists and collect nothing while measuring.
    """
    gc.collect()
    gc.freeze()
    gc.disable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--candles", type=int, default=3000, help="candles of history to serve (default 3000)")
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        baseline_server()
        return
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.sqlite'}"
        seed(url, args.candles)
        quiet_collector()
        with process(__file__, "--baseline") as base:
            rows.append((f"{BASELINE} (baseline)", *asyncio.run(measure(base, BASELINE, args.rate, args.seconds))))
        with process("-m", "tradeledger.adapters.cli", "--database", url, "serve", "--port", "0") as base:
            for path in ENDPOINTS:
                rows.append((path, *asyncio.run(measure(base, path, args.rate, args.seconds))))
    _, _, base_p99, base_rps = rows[0]
    print(f"\nREST reads, one uvicorn worker, {args.rate:,.0f} requests/s for {args.seconds:g} s each "
          f"(latency from when each request was due); throughput with {IN_FLIGHT} in flight")
    print(f"{'endpoint':<28} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'p99/base':>9} {'req/s/base':>10}")
    for path, p50, p99, rps in rows:
        print(f"{path:<28} {p50:>8.2f} {p99:>8.2f} {rps:>8,.0f} {p99 / base_p99:>9.2f} {rps / base_rps:>10.2f}")


if __name__ == "__main__":
    main()
