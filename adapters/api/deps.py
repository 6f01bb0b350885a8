"""The dependencies `app.create_app` provides to route handlers, by parameter name."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from tradeledger.adapters.api.messages import Renderer
from tradeledger.adapters.services.queries import ReadModelQueries
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.adapters.services.candles import MarketCandles
from tradeledger.adapters.services.control import Control
from tradeledger.adapters.services.ports import Clock
from tradeledger.adapters.services.health import Health
from tradeledger.settings import Settings

ReadModelsDep: TypeAlias = NamedDependency[ReadModelQueries]
StoreDep: TypeAlias = NamedDependency[LedgerStore]
FeedDep: TypeAlias = NamedDependency[EventLog]
SettingsDep: TypeAlias = NamedDependency[Settings]
ClockDep: TypeAlias = NamedDependency[Clock]
RendererDep: TypeAlias = NamedDependency[Renderer]
HealthDep: TypeAlias = NamedDependency[Health]
CommandsDep: TypeAlias = NamedDependency[Control]
CandlesDep: TypeAlias = NamedDependency[MarketCandles]
