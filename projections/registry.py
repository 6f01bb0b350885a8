"""Every projection the runner keeps current, by name."""

from __future__ import annotations

from collections.abc import Iterable

from tradeledger.projections.activity import ACTIVITY_PROJECTION
from tradeledger.projections.alerts import ALERTS_PROJECTION
from tradeledger.projections.connections import CONNECTIONS_PROJECTION
from tradeledger.projections.fold import Projection
from tradeledger.projections.health import HEALTH_PROJECTION
from tradeledger.projections.models import MODELS_PROJECTION
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.signals import SIGNALS_PROJECTION

PROJECTIONS: tuple[Projection, ...] = (
    PORTFOLIO, SIGNALS_PROJECTION, HEALTH_PROJECTION, ACTIVITY_PROJECTION, CONNECTIONS_PROJECTION,
    ALERTS_PROJECTION, MODELS_PROJECTION,
)
BY_NAME = {p.name: p for p in PROJECTIONS}


def select(names: Iterable[str] = ()) -> tuple[Projection, ...]:
    """The named projections (all when none are named); ValueError naming any unknown one."""
    names = list(names)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown projection {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return tuple(BY_NAME[n] for n in names) if names else PROJECTIONS
