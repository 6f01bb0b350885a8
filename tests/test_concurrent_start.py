"""The scale-out commands started at the same moment on a fresh database all start and serve every event."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from websockets.asyncio.client import connect

from tradeledger.adapters.composition import Composition
from tradeledger.adapters.feeds import WARMUP_CANDLES
from tradeledger.projections import sql
from tradeledger.projections.registry import PROJECTIONS
from tests.apisupport import api_settings
from tests.conftest import ROOT
from tests.fakebotapi import FakeBotApi, wait_until
from tests.telegram_support import CHAT, TOKEN, fake  # noqa: F401 - fixture
from tests.wssupport import Message, expected, sent, ws_url

DEADLINE = 120  # seconds before a wait is declared hung
AGENT_CANDLES = WARMUP_CANDLES + 30  # the synthetic market's warm-up (recorded at once), then paced candles
SCALE_OUT_ENV = {"TRADELEDGER_TRADING__SPEED": "6000", "TRADELEDGER_AGENT__HEARTBEAT_INTERVAL": "0.3",
                 "TRADELEDGER_PROJECTIONS__POLL_INTERVAL": "0.05"}


class Started(NamedTuple):
    name: str
    process: subprocess.Popen[str]
    log: Path


def launch(name: str, *args: str, env: dict[str, str], logs: Path) -> Started:
    log = logs / f"{name}.log"
    with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "tradeledger.adapters.cli", *args], cwd=ROOT, text=True,
                                   env={**os.environ, **SCALE_OUT_ENV, **env}, stderr=stderr,
                                   stdout=subprocess.PIPE if args[0] == "serve" else subprocess.DEVNULL)
    return Started(name, process, log)


def dashboard_url(serve: Started) -> str:
    assert serve.process.stdout is not None
    line = serve.process.stdout.readline()  # "" when the process died
    assert line.startswith("dashboard: http://127.0.0.1:"), (serve.name, line, serve.log.read_text())
    return line.removeprefix("dashboard: ").strip().rstrip("/")


class Client:
    """A WebSocket client on one replica from position 0: every message it gets, in arrival order."""

    def __init__(self, base: str, progressed: asyncio.Event) -> None:
        self.url, self.progressed, self.messages = ws_url(base, after=0), progressed, list[Message]()

    async def follow(self) -> None:
        try:
            async with connect(self.url) as ws:
                async for frame in ws:
                    self.messages.append(json.loads(frame))
                    self.progressed.set()
        finally:
            self.progressed.set()  # a watcher waiting for messages learns that no more will come

    def marks(self) -> int:
        return sum(m["type"] == "mark" for m in self.messages)

    def sent_up_to(self, last: int) -> bool:
        """A heartbeat's position says every message up to it has been sent."""
        return any(m["type"] == "heartbeat" and m["position"] >= last for m in self.messages)

    def log_messages(self, last: int) -> list[Message]:
        return [m for m in self.messages if m["type"] not in ("heartbeat", "pong", "subscribed")
                and m["position"] <= last]


class Watch:
    """A client on each replica, and a wait on what they received that fails as soon as a part has died."""

    def __init__(self, replicas: list[str]) -> None:
        self.progressed = asyncio.Event()
        self.clients = [Client(base, self.progressed) for base in replicas]
        self.followers = [asyncio.create_task(client.follow()) for client in self.clients]

    async def until(self, condition: Callable[[], bool], what: str, running: list[Started]) -> None:
        """Woken by each message (the replicas' heartbeats among them), bounded by DEADLINE."""
        try:
            async with asyncio.timeout(DEADLINE):
                while not condition():
                    self.check(running)
                    self.progressed.clear()
                    await self.progressed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {DEADLINE}s waiting for {what}") from None

    def check(self, running: list[Started]) -> None:
        exited = [s for s in running if s.process.poll() is not None]
        assert not exited, f"{exited[0].name} exited: {exited[0].log.read_text()}"
        for client, follower in zip(self.clients, self.followers):
            if follower.done():
                follower.result()  # raises what ended it
                raise AssertionError(f"{client.url} closed the connection")

    def stop(self) -> None:
        for follower in self.followers:
            follower.cancel()


@pytest.mark.postgres
def test_all_scale_out_commands_started_at_once_on_a_fresh_database_serve_every_event(
        postgres_url: str, fake: FakeBotApi, tmp_path: Path) -> None:
    database = {"TRADELEDGER_DATABASE__URL": postgres_url}
    bot = {"TRADELEDGER_TELEGRAM__TOKEN": TOKEN, "TRADELEDGER_TELEGRAM__ALLOWED_CHAT_IDS": str(CHAT),
           "TRADELEDGER_TELEGRAM__BASE_URL": fake.base_url}
    started = [launch("agent", "agent", env=database, logs=tmp_path),
               launch("project", "project", "--every", "0.2", env=database, logs=tmp_path),
               launch("serve-1", "serve", "--port", "0", env=database, logs=tmp_path),
               launch("serve-2", "serve", "--port", "0", env=database, logs=tmp_path),
               launch("telegram", "telegram", env=database | bot, logs=tmp_path)]
    _agent, project, *serves, telegram = started
    try:
        replicas = [dashboard_url(serve) for serve in serves]
        last = asyncio.run(watch_a_short_run(replicas, started, postgres_url))
        with Composition(api_settings(postgres_url)) as container:
            wait_until(lambda: tracked(container) >= last, timeout=DEADLINE, what="the projector to reach the run")
            asked = fake.send_command(CHAT, "/status")
            status = wait_until(lambda: fake.reply(CHAT, asked), timeout=DEADLINE, what="the bot's /status")
        assert status.startswith("paper: "), status
        for component in (telegram, *serves, project):
            component.process.send_signal(signal.SIGTERM)
            assert component.process.wait(DEADLINE) == 0, (component.name, component.log.read_text())
    finally:
        for component in started:
            if component.process.poll() is None:
                component.process.kill()
                component.process.wait()
    for component in started:
        assert "Traceback" not in component.log.read_text(), (component.name, component.log.read_text())


async def watch_a_short_run(replicas: list[str], started: list[Started], url: str) -> int:
    """A client on each replica while the agent records a short run; returns the store's head after it."""
    agent, *others = started
    watch = Watch(replicas)
    await watch.until(lambda: all(c.marks() >= AGENT_CANDLES for c in watch.clients), "the candles on every replica",
                      started)
    agent.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(agent.process.wait, DEADLINE) == 0, agent.log.read_text()
    with Composition(api_settings(url)) as container:
        last, want = container.store.head_position(), expected(container, 0)
    await watch.until(lambda: all(c.sent_up_to(last) for c in watch.clients), f"every replica to send up to {last}",
                      others)
    watch.stop()
    for client in watch.clients:
        got = sent(client.log_messages(last))
        assert got == [m for m in want if m[0] <= last], f"{client.url}: not every event of the run, in order"
        assert [p for p, _ in got] == sorted(p for p, _ in got)
    assert {"mark", "signal", "agent"} <= {kind for _, kind in want}, "a real run"
    return last


def tracked(container: Composition) -> int:
    with container.engine.connect() as conn:
        return min(t.position for t in sql.read_tracking(conn, PROJECTIONS).values())
