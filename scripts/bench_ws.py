"""Append-to-delivery latency over /ws with 1,000 clients, against a bare broadcast socket as the baseline.

Two server processes and one client process (this one):
- the API: the real app under uvicorn (`adapters.api.server`) with an appender thread in the
  same process, as in `tradeledger run`, where the agent appends in-process. On command it
  appends agent heartbeats at a fixed rate; each becomes one `agent` message on the `health`
  topic, whose `at` is the heartbeat's own time, taken just before its append;
- the baseline: a bare `websockets` server that broadcasts every frame it receives to every
  connection. A publisher connection sends frames stamped with the send time at the same rate.

All clients connect first (the API's clients subscribe to `health` only), then the appends or
frames start; each client measures receive time minus the stamp. Same machine, same clock.

    .venv/bin/python scripts/bench_ws.py [--clients 1000] [--messages 100] [--rate 10]

The figures are printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tradeledger.adapters.api.server import background_server  # noqa: E402
from tradeledger.adapters.composition import Composition  # noqa: E402
from tradeledger.domain.agent_run import AgentRun  # noqa: E402
from tradeledger.settings import load_settings  # noqa: E402

CONNECT_BATCH = 100  # connections opened at once (the listen backlog is finite)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- the API server process ------------------------------------------------------------


def api_server(url: str) -> None:
    """`bench_ws.py --api URL`: serve, then on stdin `beat N RATE` append N heartbeats at RATE per second."""
    settings = load_settings(overrides={"database.url": url, "agent.heartbeat_interval": "5"})
    with Composition(settings) as container:
        container.migrate()
        with background_server(container.api_app(), heartbeat_interval=5.0) as base:
            print(f"listening: {base.replace('http://', 'ws://')}/ws", flush=True)
            for line in sys.stdin:
                _, count, rate = line.split()
                beat(container, int(count), float(rate))
                print("done", flush=True)


def beat(container: Composition, count: int, rate: float) -> None:
    run = AgentRun.start(key=f"bench:{os.getpid()}:{time.time()}", version="bench", host=socket.gethostname(),
                         pid=os.getpid(), config_digest="bench", components=("bench",), model="none",
                         decision_config={}, at=utcnow())
    container.store.save(run)
    start = time.perf_counter()
    for i in range(1, count + 1):  # the first beat one interval after Started, not queued behind it
        time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        run.beat(at=utcnow(), candles_processed=i, feed_lag=0.0)
        container.store.save(run)
    run.stop(reason="bench done", clean=True, at=utcnow())
    container.store.save(run)


# -- the baseline server process -------------------------------------------------------


def echo_server() -> None:
    """`bench_ws.py --echo`: every frame any connection sends goes to every connection."""
    async def main() -> None:
        clients: set[ServerConnection] = set()

        async def handler(ws: ServerConnection) -> None:
            clients.add(ws)
            try:
                async for frame in ws:
                    broadcast(clients, frame)
            finally:
                clients.discard(ws)

        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"listening: ws://127.0.0.1:{port}/", flush=True)
            await asyncio.get_running_loop().create_future()

    asyncio.run(main())


# -- the client side ---------------------------------------------------------------------


@contextmanager
def server(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    child = subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("listening: "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield child, line.removeprefix("listening: ").strip()
    finally:
        if child.stdin:
            child.stdin.close()
        child.terminate()
        child.wait()


async def open_clients(url: str, count: int, first_frame: str | None) -> list[ClientConnection]:
    clients: list[ClientConnection] = []
    for start in range(0, count, CONNECT_BATCH):
        batch = await asyncio.gather(*(connect(url, compression=None, max_queue=None)
                                       for _ in range(min(CONNECT_BATCH, count - start))))
        clients.extend(batch)
    if first_frame is not None:
        await asyncio.gather(*(c.send(first_frame) for c in clients))
        await asyncio.gather(*(wait_for_type(c, "subscribed") for c in clients))
    return clients


async def wait_for_type(client: ClientConnection, kind: str) -> None:
    while json.loads(await client.recv())["type"] != kind:
        pass


Latency = Callable[[str | bytes, float], float | None]  # ms from a frame's stamp; None: not measured


async def collect(client: ClientConnection, count: int, latency: Latency) -> list[float]:
    latencies: list[float] = []
    while len(latencies) < count:
        frame = await client.recv()
        measured = latency(frame, time.time())
        if measured is not None:
            latencies.append(measured)
    return latencies


def heartbeat_latency(frame: str | bytes, received: float) -> float | None:
    message = json.loads(frame)
    if message["type"] != "agent" or message["data"]["status"] != "running":
        return None
    return (received - datetime.fromisoformat(message["at"]).timestamp()) * 1000


def echo_latency(frame: str | bytes, received: float) -> float | None:
    return (received - json.loads(frame)["at"]) * 1000


async def measure_api(url: str, child: subprocess.Popen[str], clients: int, messages: int,
                      rate: float) -> list[float]:
    connections = await open_clients(url, clients, '{"type":"subscribe","topics":["health"]}')
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"beat {messages} {rate}\n")
    child.stdin.flush()
    results = await asyncio.gather(*(collect(c, messages, heartbeat_latency) for c in connections))
    await asyncio.to_thread(child.stdout.readline)  # "done"
    await asyncio.gather(*(c.close() for c in connections))
    return [latency for result in results for latency in result]


async def measure_echo(url: str, clients: int, messages: int, rate: float) -> list[float]:
    connections = await open_clients(url, clients, None)
    async with connect(url, compression=None) as publisher:
        async def publish() -> None:
            start = time.perf_counter()
            for i in range(messages):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                await publisher.send(json.dumps({"at": time.time()}))

        # The publisher is also a connection of the broadcast: it must drain its own frames.
        results, *_ = await asyncio.gather(
            asyncio.gather(*(collect(c, messages, echo_latency) for c in connections)), publish(),
            collect(publisher, messages, echo_latency))
    await asyncio.gather(*(c.close() for c in connections))
    return [latency for result in results for latency in result]


def summary(latencies: list[float]) -> tuple[float, float]:
    return statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="WebSocket clients (default 1000)")
    parser.add_argument("--messages", type=int, default=100, help="appends (and baseline frames) (default 100)")
    parser.add_argument("--rate", type=float, default=10.0, help="appends per second (default 10)")
    parser.add_argument("--api", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.api:
        api_server(args.api)
        return
    if args.echo:
        echo_server()
        return
    # The clients' own garbage collection would pause all 1,000 of them at once: not measured.
    gc.collect()
    gc.freeze()
    gc.disable()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.sqlite'}"
        with server("--echo") as (_, echo_url):
            baseline = asyncio.run(measure_echo(echo_url, args.clients, args.messages, args.rate))
        with server("--api", url) as (child, api_url):
            ours = asyncio.run(measure_api(api_url, child, args.clients, args.messages, args.rate))
    (base_p50, base_p99), (p50, p99) = summary(baseline), summary(ours)
    print(f"\n{args.clients:,} WebSocket clients, {args.messages} messages at {args.rate:g}/s, "
          f"{len(ours):,} deliveries measured")
    print(f"{'path':<44} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'bare broadcast socket (baseline)':<44} {base_p50:>8.2f} {base_p99:>8.2f}")
    print(f"{'append -> follower -> /ws (SQLite, in-process)':<44} {p50:>8.2f} {p99:>8.2f}")
    print(f"ratio p50 {p50 / base_p50:.2f}x, p99 {p99 / base_p99:.2f}x")


if __name__ == "__main__":
    main()
