"""Memory stays flat over 10,000 WebSocket connect/disconnect cycles (DESIGN §8). Slow: `-m slow`."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tradeledger.domain.gateway import Gateway
from tests.composing import composed
from tests.apisupport import api_settings, events, serving

CYCLES, CONCURRENT, WARM_UP = 10_000, 100, 1_000


def rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@pytest.mark.slow
def test_connect_disconnect_cycles_leave_memory_flat(sqlite_url: str) -> None:
    with composed(api_settings(sqlite_url)) as container:
        with serving(container) as url:
            async def cycle() -> None:
                async with connect(url.replace("http://", "ws://") + "/ws") as ws:
                    await ws.send('{"type":"ping"}')
                    while '"pong"' not in await ws.recv():
                        pass

            async def cycles(count: int) -> None:
                for _ in range(count // CONCURRENT):
                    await asyncio.gather(*(cycle() for _ in range(CONCURRENT)))

            asyncio.run(cycles(WARM_UP))
            gc.collect()
            before = rss_kib()
            asyncio.run(cycles(CYCLES))
            gc.collect()
            after = rss_kib()
        assert len(events(container, Gateway.ClientDisconnected)) == CYCLES + WARM_UP
    assert after <= before * 1.05, f"RSS grew from {before} KiB to {after} KiB"
