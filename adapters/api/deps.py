"""The dependencies `app.create_app` provides to route handlers, by parameter name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeAlias

from litestar.di import NamedDependency

from tradeledger.adapters.api.messages import Renderer
from tradeledger.adapters.api.queries import ReadModels
from tradeledger.adapters.eventfeed import StoreFeed
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.settings import Settings

Clock = Callable[[], datetime]

ReadModelsDep: TypeAlias = NamedDependency[ReadModels]
StoreDep: TypeAlias = NamedDependency[LedgerStore]
FeedDep: TypeAlias = NamedDependency[StoreFeed]
SettingsDep: TypeAlias = NamedDependency[Settings]
ClockDep: TypeAlias = NamedDependency[Clock]
RendererDep: TypeAlias = NamedDependency[Renderer]
