"""Shared pieces of the API tests: settings, a trading history made by the real agent, a live server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from tradeledger.adapters.agent import Agent
from tradeledger.adapters.api.server import background_server
from tradeledger.adapters.audit import read_log
from tradeledger.adapters.container import Container
from tradeledger.adapters.marketdata import synthetic_candles
from tradeledger.adapters.reproduce import decoded
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.settings import Settings, load_settings

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
TOKEN = "s3cret-token"


def api_settings(url: str, **overrides: Any) -> Settings:
    base = {"database.url": url, "predictor.name": "sma_cross", "agent.heartbeat_interval": "1",
            "projections.poll_interval": "0.05", "api.token": TOKEN}
    return load_settings(overrides=base | overrides, environ={})


def trade(container: Container, candles: int, *, skip: int = 0, batch_size: int = 1) -> Agent:
    """The real agent on the synthetic market: `candles` more ticks after the first `skip`."""
    agent = Agent(container.store, container.settings)
    agent.start(("test",))
    feed = itertools.islice(synthetic_candles("ETH/BTC", "5m", start=START, seed=7), skip, skip + candles)
    agent.run_feed(feed, batch_size=batch_size)
    agent.stop("test done")
    return agent


def project(container: Container) -> None:
    ProjectionRunner(container.feed, container.engine).catch_up()


def events(container: Container, *types: type) -> list[Any]:
    return [e for e, _ in decoded(read_log(container.store)) if isinstance(e, types)]


@contextmanager
def serving(container: Container, *, send_buffer: int | None = None) -> Iterator[str]:
    """The container's app under uvicorn on 127.0.0.1 with an ephemeral port; yields the base URL."""
    with background_server(container.api_app(), heartbeat_interval=container.settings.agent.heartbeat_interval,
                           send_buffer=send_buffer) as url:
        yield url
