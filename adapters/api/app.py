"""The Litestar application factory: REST under /api, the WebSocket at /ws, the dashboard at /.

The factory takes its collaborators built (the live stream, the read models,
health, the store, the event log, settings); the composition root
(`adapters.composition.Composition.api_app`) builds them. The app's lifespan
records this process's Gateway (Started ... Stopped) and runs the one log
follower that feeds every WebSocket connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from uuid import UUID

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from tradeledger.adapters.api import errors
from tradeledger.adapters.api.messages import MarketNames, Renderer
from tradeledger.adapters.services.queries import ReadModelQueries
from tradeledger.adapters.api.routes import (candles, control, dashboard, metrics, models, operations, portfolio,
                                            signals)
from tradeledger.adapters.api.websocket import LiveStream, live_updates
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.adapters.release import VERSION
from tradeledger.adapters.services.candles import MarketCandles
from tradeledger.adapters.services.control import Control
from tradeledger.adapters.services.metrics_log import HistoryLog
from tradeledger.adapters.services.ports import Clock
from tradeledger.adapters.services.health import Health
from tradeledger.domain.market import Market
from tradeledger.settings import Settings

QUEUE_LIMIT = 256  # pages of updates a connection may fall behind before it catches up from the log
STOP_REASON = "server stopped"


def market_names(store: LedgerStore) -> MarketNames:
    """Market stream id -> (symbol, timeframe), read once per market from its Listed event."""

    @lru_cache(maxsize=None)  # markets never change their name, and there are few of them
    def lookup(market_id: UUID) -> tuple[str, str]:
        listed = next(iter(store.events.get(market_id, limit=1)))
        assert isinstance(listed, Market.Listed)
        return listed.symbol, listed.timeframe

    return lookup


def create_app(*, stream: LiveStream, renderer: Renderer, read_models: ReadModelQueries, health: Health,
               store: LedgerStore, feed: EventLog, commands: Control, settings: Settings,
               clock: Clock, market_candles: MarketCandles, history_log: HistoryLog) -> Litestar:
    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await stream.sessions.start()
        await stream.follower.start()
        try:
            yield
        finally:
            await stream.follower.stop(STOP_REASON)
            await stream.sessions.stop(STOP_REASON)

    def constant(value: object) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    api = Router("/api", route_handlers=[*portfolio.ROUTES, *signals.ROUTES, *operations.ROUTES,
                                         *control.ROUTES, *models.ROUTES, *candles.ROUTES, *metrics.ROUTES])
    return Litestar(
        route_handlers=[api, live_updates, *dashboard.ROUTES],
        dependencies={
            "read_models": constant(read_models), "store": constant(store), "feed": constant(feed),
            "settings": constant(settings), "clock": constant(clock), "renderer": constant(renderer),
            "stream": constant(stream), "health": constant(health), "commands": constant(commands),
            "market_candles": constant(market_candles), "history_log": constant(history_log),
        },
        lifespan=[lifespan],
        state=State({"api_token": settings.api.token}),
        exception_handlers=errors.HANDLERS,
        # JSON only: the default schema viewer pages load their scripts from a CDN.
        openapi_config=OpenAPIConfig(title="tradeledger", version=VERSION, path="/schema",
                                     render_plugins=[JsonRenderPlugin()],
                                     description="Read models, control and the update stream of the "
                                                 "tradeledger event log. See docs/api.md."),
    )
