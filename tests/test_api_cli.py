"""`tradeledger run` and `tradeledger serve` as a user starts and stops them: real processes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.projections.sql import TRACKING
from tests.composing import composed
from tests.apisupport import api_settings, events
from tests.conftest import ROOT

DEADLINE = 120  # seconds before a wait is declared hung


@contextmanager
def tradeledger(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start the CLI; yields the process and the dashboard URL it printed."""
    process = subprocess.Popen([sys.executable, "-m", "tradeledger.adapters.cli", *args], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("dashboard: http://127.0.0.1:"), (line, process.stderr and process.stderr.read())
        yield process, line.removeprefix("dashboard: ").strip().rstrip("/")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def watch_until_closed(base: str) -> int:
    async with connect(base.replace("http://", "ws://") + "/ws") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), DEADLINE)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code


def test_run_is_the_whole_system_in_one_process_and_stops_cleanly(sqlite_url: str) -> None:
    env = {"TRADELEDGER_TRADING__SPEED": "6000", "TRADELEDGER_API__TOKEN": ""}
    with tradeledger("--database", sqlite_url, "run", "--port", "0", "--predictor", "sma_cross", env=env) as (
            process, base):
        assert httpx.get(base + "/api/ready").json()["ready"]
        assert "<title>tradeledger</title>" in httpx.get(base + "/").text

        async def scenario() -> int:
            watcher = asyncio.create_task(watch_until_closed(base))
            while httpx.get(base + "/api/connections").json()["open"] < 1:  # the projection shows the client
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            return await watcher

        close_code = asyncio.run(scenario())
        assert process.wait(DEADLINE) == 0, process.stderr.read() if process.stderr else ""
    assert close_code in (1001, 1012)
    with composed(api_settings(sqlite_url)) as container:
        (stopped,) = events(container, AgentRun.Stopped)
        assert stopped.clean and stopped.reason == "stopped on request"
        assert len(events(container, Gateway.Stopped)) == 1
        assert len(events(container, Gateway.ClientDisconnected)) == len(events(container, Gateway.ClientConnected))
        with container.engine.connect() as conn:
            positions = {row.name: row.position for row in conn.execute(TRACKING.select())}
        assert set(positions.values()) == {container.store.head_position()}, "read models left behind"


def test_serve_alone_against_postgres_then_sigint(postgres_url: str) -> None:
    with tradeledger("--database", postgres_url, "serve", "--port", "0") as (process, base):
        health = httpx.get(base + "/api/health").json()
        assert health["agent"]["status"] == "none" and health["store_reachable"]
        assert httpx.get(base + "/schema/openapi.json").json()["openapi"].startswith("3.1")
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE) == 0
    with composed(api_settings(postgres_url)) as container:
        (stopped,) = events(container, Gateway.Stopped)
        assert stopped.reason == "server stopped"


def test_a_taken_port_is_reported_not_a_traceback(sqlite_url: str) -> None:
    with tradeledger("--database", sqlite_url, "serve", "--port", "0") as (process, base):
        port = base.rsplit(":", 1)[1]
        second = subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--database", sqlite_url, "serve", "--port",
                                 port], cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE)
        process.send_signal(signal.SIGINT)
        process.wait(DEADLINE)
    assert second.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr
