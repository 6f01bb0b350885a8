"""The composition root as the tests open it: built, and migrated like the CLI does before a command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tradeledger.adapters.composition import Composition
from tradeledger.adapters.services.ports import Clock, utcnow
from tradeledger.settings import Settings


@contextmanager
def composed(settings: Settings, *, clock: Clock = utcnow) -> Iterator[Composition]:
    with Composition(settings, clock=clock) as root:
        root.migrate()
        yield root
