"""Projection services behind the CLI: the runner process, rebuild, replay, health, verify.

This is where the projections meet the world: the store's event feed, the
database engine, the clock, signals, the health file and the local process table.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID

import msgspec
from sqlalchemy.exc import SQLAlchemyError

from tradeledger.adapters.audit import Finding
from tradeledger.adapters.container import Container
from tradeledger.adapters.eventfeed import StoreFeed
from tradeledger.adapters.healthfile import HealthFile
from tradeledger.projections import rebuild as rebuilding
from tradeledger.projections import sql
from tradeledger.projections.connections import GATEWAYS, close_dead_gateways
from tradeledger.projections.fold import Projection
from tradeledger.projections.health import AgentHealth, HealthReport, assess, stopped_text
from tradeledger.projections.healthview import read_health
from tradeledger.projections.portfolio import PORTFOLIO, PortfolioView, portfolio_view
from tradeledger.projections.registry import PROJECTIONS, select
from tradeledger.projections.replay import replay
from tradeledger.projections.runner import PAGE_SIZE, ProjectionRunner, ProjectionStatus
from tradeledger.projections.verify import ProjectionCheck, verify_projections

logger = logging.getLogger(__name__)

# Pages are tens of thousands of short-lived, acyclic objects. At the default gen-0
# threshold (700) the collector runs every few events and rescans the page: measured,
# that was a quarter of a rebuild. Raising it only makes collections rarer.
BULK_GC_THRESHOLD = 100_000


def bulk_gc() -> None:
    """Tune this process's garbage collector for reading the log in bulk."""
    gc.set_threshold(BULK_GC_THRESHOLD, *gc.get_threshold()[1:])


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def feed(container: Container) -> StoreFeed:
    return StoreFeed(container.store, container.engine)


def runner(container: Container, projections: Iterable[Projection] = PROJECTIONS, *, page_size: int = PAGE_SIZE,
           on_progress: Callable[[list[ProjectionStatus]], None] | None = None) -> ProjectionRunner:
    return ProjectionRunner(feed(container), container.engine, tuple(projections), page_size=page_size,
                            poll_interval=container.settings.projections.poll_interval, on_progress=on_progress)


# -- the `project` process ------------------------------------------------------


def health_file(container: Container) -> HealthFile | None:
    path = container.settings.projections.health_file
    return HealthFile(path, lambda: health(container)) if path else None


def run_projector(container: Container, *, stop: threading.Event, report: Callable[[str], None],
                  every: float, page_size: int = PAGE_SIZE) -> None:
    """Run the runner until `stop` is set; report progress when it changed, at most every `every` seconds.

    Each round also closes the sessions of gateways on this host whose process died.
    """
    projector = runner(container, page_size=page_size, on_progress=health_file(container))
    projector.start()
    last: list[ProjectionStatus] = []
    try:
        while not stop.wait(every):
            try:
                close_dead_gateways_here(container)
            except Exception:  # noqa: BLE001 - housekeeping must not stop the projections
                logger.exception("could not check for dead gateways; trying again in %ss", every)
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


def close_dead_gateways_here(container: Container) -> list[UUID]:
    with container.engine.connect() as conn:
        gateways = sql.row_source(conn)(GATEWAYS)
    return close_dead_gateways(container.store, gateways, host=socket.gethostname(), is_alive=pid_alive,
                               at=utcnow())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# -- rebuild, replay --------------------------------------------------------------


class RebuildResult(msgspec.Struct, kw_only=True):
    projections: list[str]
    events: int
    seconds: float
    events_per_second: float


def rebuild(container: Container, names: Iterable[str] = (), *, page_size: int = PAGE_SIZE) -> RebuildResult:
    """Fold the log again into new tables for the named projections (all when none named) and swap them in.

    RebuildFailed (the live read models unchanged) when it cannot.
    """
    projections = select(names)
    started = time.perf_counter()
    events = rebuilding.rebuild(feed(container), container.engine, projections, page_size=page_size)
    seconds = time.perf_counter() - started
    return RebuildResult(projections=[p.name for p in projections], events=events, seconds=seconds,
                         events_per_second=events / seconds if seconds else 0.0)


def portfolio_at(container: Container, account: str, *, position: int | None = None,
                 as_of: datetime | None = None, recorded_at: datetime | None = None) -> PortfolioView | None:
    """The account's portfolio folded afresh from the log up to a position, a business or a recorded time."""
    models = replay(feed(container), position=position, as_of=as_of, recorded_at=recorded_at,
                    projections=(PORTFOLIO,))
    return portfolio_view(models.tables.rows, account)


def describe_portfolio(view: PortfolioView) -> str:
    a = view.account
    marked = a.mark_time.isoformat() if a.mark_time else "no candle yet"
    lines = [
        f"account {a.account} ({a.quote_currency}), marked at {marked}",
        f"  cash {a.cash}  equity {a.equity}  realised PnL {a.realised_pnl}  fees {a.fees}"
        + (f"  HALTED by {a.halted_rule}: {a.halted_reason}" if a.halted else ""),
        *(f"  position {p.symbol}: {p.quantity} @ {p.average_price} (last {p.last_price}), "
          f"unrealised {p.unrealised_pnl}" for p in view.positions),
        *(f"  open order {o.order_id}: {o.side.value} {o.quantity} {o.symbol}" for o in view.open_orders),
        f"  {len(view.trades)} closed trades, net PnL {sum((t.pnl for t in view.trades), Decimal(0))}",
    ]
    return "\n".join(lines)


# -- health, verify ---------------------------------------------------------------


def health(container: Container, now: datetime | None = None) -> HealthReport:
    now = now or utcnow()
    try:
        head: int | None = container.store.head_position()
    except Exception:  # noqa: BLE001 - an unreachable store is what the report is for
        head = None
    try:
        return read_health(container.engine, head=head, now=now,
                           heartbeat_interval=container.settings.agent.heartbeat_interval)
    except SQLAlchemyError:
        return assess(now=now, head=None, agent=AgentHealth(status="none"), projections=[], open_connections=None)


def describe_health(report: HealthReport) -> str:
    agent = report.agent
    lines = [
        f"{report.status.upper()}" + (f": {'; '.join(report.reasons)}" if report.reasons else ""),
        f"  event store: {'reachable, head ' + str(report.head) if report.store_reachable else 'UNREACHABLE'}",
        f"  agent: {agent.status}" + (f" (pid {agent.pid} on {agent.host}, last heartbeat "
                                      f"{agent.heartbeat_age:.0f}s ago)" if agent.heartbeat_age is not None else ""),
        *(f"  projection {p.name}: position {p.position}, lag {p.lag}"
          + (f", {stopped_text(p.error, p.error_position, p.error_at)}" if p.error else "")
          for p in report.projections),
        f"  open connections: {report.open_connections}",
    ]
    return "\n".join(lines)


def verify_read_models(container: Container) -> tuple[list[ProjectionCheck], list[Finding]]:
    """Each projection's check, and the failures as audit findings (first failing row named)."""
    checks = verify_projections(container.engine, feed(container))
    return checks, [f for c in checks for f in findings(c)]


def findings(check: ProjectionCheck) -> list[Finding]:
    def finding(kind: str, stream: str, message: str, position: int | None = check.position) -> Finding:
        return Finding(check=kind, stream=stream, version=None, position=position, message=message)

    found = []
    if check.error is not None:
        found.append(finding("projection", check.name, f"stopped on the event at position {check.error_position}: "
                             f"{check.error}", check.error_position))
    if check.fold_error is not None:
        found.append(finding("projection", check.name, f"a fresh fold of the log fails: {check.fold_error}"))
    if check.mismatch is not None:
        found.append(finding("projection", f"{check.name}/{check.mismatch.table}",
                             f"row {check.mismatch.key} differs from a fresh fold: {check.mismatch.message}"))
    if check.unreconciled is not None:
        found.append(finding("reconcile", f"{check.name}/{check.unreconciled.table}", str(check.unreconciled)))
    return found
