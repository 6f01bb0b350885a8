"""Shared pieces of the API tests: settings, a trading history made by the real agent, a live server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from tradeledger.adapters.services.trading import TradingSession
from tradeledger.adapters.api.server import background_server
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.synthetic import synthetic_candles
from tradeledger.adapters.services.ports import scan
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.settings import Settings, load_settings

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
TOKEN = "s3cret-token"


def api_settings(url: str, **overrides: Any) -> Settings:
    base = {"database.url": url, "predictor.name": "sma_cross", "agent.heartbeat_interval": "1",
            "projections.poll_interval": "0.05", "api.token": TOKEN}
    return load_settings(overrides=base | overrides, environ={})


def trade(container: Composition, candles: int, *, skip: int = 0, batch_size: int = 1) -> TradingSession:
    """The real agent on the synthetic market: `candles` more ticks after the first `skip`."""
    agent = container.agent(container.settings)
    agent.resume()
    agent.start(("test",))
    feed = itertools.islice(synthetic_candles("ETH/BTC", "5m", start=START, seed=7), skip, skip + candles)
    agent.run_feed(feed, batch_size=batch_size)
    agent.stop("test done")
    return agent


def project(container: Composition) -> None:
    ProjectionRunner(container.feed, container.engine).catch_up()


def events(container: Composition, *types: type) -> list[Any]:
    return [r.event for r in scan(container.feed, types=types)]


@contextmanager
def serving(container: Composition, *, send_buffer: int | None = None) -> Iterator[str]:
    """The container's app under uvicorn on 127.0.0.1 with an ephemeral port; yields the base URL."""
    with background_server(container.api_app(), heartbeat_interval=container.settings.agent.heartbeat_interval,
                           send_buffer=send_buffer) as url:
        yield url
