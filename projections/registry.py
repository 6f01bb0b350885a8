"""Every projection the runner keeps current, by name."""

from __future__ import annotations

from collections.abc import Iterable

from projections.activity import ACTIVITY_PROJECTION
from projections.alerts import ALERTS_PROJECTION
from projections.connections import CONNECTIONS_PROJECTION
from projections.fold import Projection
from projections.health import HEALTH_PROJECTION
from projections.portfolio import PORTFOLIO
from projections.signals import SIGNALS_PROJECTION

PROJECTIONS: tuple[Projection, ...] = (
    PORTFOLIO, SIGNALS_PROJECTION, HEALTH_PROJECTION, ACTIVITY_PROJECTION, CONNECTIONS_PROJECTION,
    ALERTS_PROJECTION,
)
BY_NAME = {p.name: p for p in PROJECTIONS}


def select(names: Iterable[str] = ()) -> tuple[Projection, ...]:
    """The named projections (all when none are named); ValueError naming any unknown one."""
    names = list(names)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown projection {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return tuple(BY_NAME[n] for n in names) if names else PROJECTIONS
