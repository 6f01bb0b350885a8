"""The health view, read from the read models at the moment it is asked for (the rule is in projections.health_rule)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from tradeledger.projections import sql
from tradeledger.projections.connections_rows import SESSIONS
from tradeledger.projections.health_rows import AGENT_RUNS
from tradeledger.projections.health_rule import HealthReport, ProjectionHealth, agent_health, assess, latest_run
from tradeledger.projections.names import NAMES
from tradeledger.projections.snapshot import snapshot


def read_health(engine: sa.Engine, *, head: int | None, now: datetime, heartbeat_interval: float,
                names: Sequence[str] = NAMES) -> HealthReport:
    """`head` is None when the event store could not be reached. The tables are read in one snapshot."""
    with snapshot(engine) as conn:
        rows = sql.row_source(conn)
        run = latest_run(rows(AGENT_RUNS))
        tracking = sql.tracking_by_name(conn, names)
        sessions = conn.execute(sa.select(sa.func.count()).select_from(SESSIONS.table)).scalar_one()
    return assess(
        now=now, head=head, agent=agent_health(run, now=now, heartbeat_interval=heartbeat_interval),
        projections=[
            ProjectionHealth(name=t.name, position=t.position, lag=None if head is None else max(0, head - t.position),
                             error=t.error, error_position=t.error_position, error_at=t.error_at)
            for t in tracking.values()
        ],
        open_connections=sessions,
    )
