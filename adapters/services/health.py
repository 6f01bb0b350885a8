"""Health, composed here for every reader (`/api/health`, `tradeledger health`, Telegram /health and the
health file), including when the event store or the read models cannot be reached: an unreachable store
is what the report is for. It reads the log's head and the read models only, so `tradeledger health`
imports no fold and no event class.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from tradeledger.adapters.services.ports import Clock
from tradeledger.projections.health_rule import AgentHealth, HealthReport, assess
from tradeledger.projections.healthview import read_health

logger = logging.getLogger(__name__)


class Health:
    """The health report from the log head and the read models, also when either cannot be reached."""

    def __init__(self, *, head: Callable[[], int], engine: sa.Engine, heartbeat_interval: float,
                 clock: Clock) -> None:
        self.head = head
        self.engine = engine
        self.heartbeat_interval = heartbeat_interval
        self.clock = clock
        self.lock = threading.Lock()
        self.last: HealthReport | None = None

    def report(self, now: datetime | None = None) -> HealthReport:
        now = now or self.clock()
        head = self.store_head()
        try:
            return read_health(self.engine, head=head, now=now, heartbeat_interval=self.heartbeat_interval)
        except SQLAlchemyError:
            # The read models cannot be read: report what is known (readiness says why).
            return assess(now=now, head=head, agent=AgentHealth(status="none"), projections=[],
                          open_connections=None)

    def recent(self, max_age: float) -> HealthReport:
        """A report at most `max_age` seconds old (by the clock), so probes may poll hard.

        The agent's status depends on the clock, so this cache is by age, not by log position.
        """
        now = self.clock()
        with self.lock:
            last = self.last
            if last is None or not 0 <= (now - last.checked_at).total_seconds() < max_age:
                last = self.last = self.report(now)
            return last

    def store_head(self) -> int | None:
        """The log head, or None when the event store cannot be reached."""
        try:
            return self.head()
        except Exception:  # noqa: BLE001 - any driver error means the same thing here: unreachable
            logger.warning("the event store is unreachable", exc_info=True)
            return None
