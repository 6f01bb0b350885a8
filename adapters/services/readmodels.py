"""Read-model maintenance: the projector loop, rebuild and replay (health is in services.health)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime

import msgspec
import sqlalchemy as sa

from tradeledger.projections import rebuild as rebuilding
from tradeledger.projections.health_rule import stopped_text
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_view import AccountPortfolio, account_portfolio
from tradeledger.projections.registry import select
from tradeledger.projections.replay import replay
from tradeledger.projections.runner import PAGE_SIZE, EventFeed, ProjectionRunner, ProjectionStatus

logger = logging.getLogger(__name__)

# Pages are tens of thousands of short-lived, acyclic objects. At the default gen-0
# threshold (700) the collector runs every few events and rescans the page: measured,
# that was a quarter of a rebuild. Raising it only makes collections rarer.
BULK_GC_THRESHOLD = 100_000


def bulk_gc() -> None:
    """Tune this process's garbage collector for reading the log in bulk."""
    gc.set_threshold(BULK_GC_THRESHOLD, 50, 100)


def keep_loaded() -> None:
    """What the process holds now (the candles of a backtest: lasting, acyclic) is left out of later
    collections; measured on a 103,680-candle backtest, the full collections rescanning them and the
    events made per candle at the default thresholds took 1.6 of its 10.5 s, with this and `bulk_gc` 0.1 s."""
    gc.collect()
    gc.freeze()


# -- the projector loop ---------------------------------------------------------


def run_projector(projector: ProjectionRunner, *, stop: threading.Event, report: Callable[[str], None],
                  every: float, housekeeping: Callable[[], object]) -> None:
    """Run `projector` until `stop` is set; report progress when it changed, at most every `every` seconds.

    Each round also runs `housekeeping` (closing the sessions of dead gateways); its failure is logged, and
    it never stops the projections.
    """
    projector.start()
    last: list[ProjectionStatus] = []
    try:
        while not stop.wait(every):
            try:
                housekeeping()
            except Exception:  # noqa: BLE001 - housekeeping must not stop the projections
                logger.exception("housekeeping failed; trying again in %ss", every)
            status = projector.status()
            if status != last:
                report(progress_line(status))
                last = status
    finally:
        projector.stop()


def progress_line(status: list[ProjectionStatus]) -> str:
    head = max((s.head for s in status), default=0)
    parts = [f"{s.name} {s.position} (lag {s.lag})" + (f" {stopped_text(s.error, s.error_position, s.error_at)}"
                                                       if s.error else "") for s in status]
    return f"head {head}: " + ", ".join(parts)


# -- rebuild, replay --------------------------------------------------------------


class RebuildResult(msgspec.Struct, kw_only=True):
    projections: list[str]
    events: int
    seconds: float
    events_per_second: float


def rebuild(feed: EventFeed, engine: sa.Engine, names: Iterable[str] = (), *,
            page_size: int = PAGE_SIZE) -> RebuildResult:
    """Fold the log again into new tables for the named projections (all when none named) and swap them in.

    ValueError for an unknown name; RebuildFailed (the live read models unchanged) when it cannot.
    """
    projections = select(names)
    started = time.perf_counter()
    events = rebuilding.rebuild(feed, engine, projections, page_size=page_size)
    seconds = time.perf_counter() - started
    return RebuildResult(projections=[p.name for p in projections], events=events, seconds=seconds,
                         events_per_second=events / seconds if seconds else 0.0)


def portfolio_at(feed: EventFeed, account: str, *, position: int | None = None, as_of: datetime | None = None,
                 recorded_at: datetime | None = None) -> AccountPortfolio | None:
    """The account's portfolio folded afresh from the log up to a position, a business or a recorded time."""
    models = replay(feed, position=position, as_of=as_of, recorded_at=recorded_at, projections=(PORTFOLIO,))
    return account_portfolio(models.tables.rows, account)
