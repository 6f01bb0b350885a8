"""The health rule: agent status and overall health from the agent runs rows, the projections and the clock.

Agent status is computed when read, never stored, because it depends on the clock:
- `stopped` when the latest run (the last one started, in log order) recorded Stopped;
- `stale` when its last heartbeat (or its start, before the first beat) is older
  than STALE_AFTER_INTERVALS heartbeat intervals: the process died or hung
  without saying so;
- `running` otherwise; `none` when no agent ever started.

The feed (`feed`): `live`, `lagging` or `down` as the running agent's last heartbeat judged it
(the agent has the feed's clock: an exchange's server time; `adapters.livefeed`); `down` when the
agent is stale or stopped; None when no agent ever started. `feed_source` names it: the exchange
(`binance`), `SYNTHETIC` (the demo market) or `file:NAME`.

Overall status and the `tradeledger health` exit code:
- unhealthy (2): the event store is unreachable, a projection stopped on an
  error, or the agent is stale;
- degraded (1): the agent is stopped or never started, its feed is lagging or
  down, or a projection lags the log by more than MAX_HEALTHY_LAG events;
- healthy (0): otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from tradeledger.projections.health_rows import AgentRunRow

STALE_AFTER_INTERVALS = 3
MAX_HEALTHY_LAG = 1000

AgentState = Literal["running", "stale", "stopped", "none"]
FeedState = Literal["live", "lagging", "down"]
Status = Literal["healthy", "degraded", "unhealthy"]
EXIT_CODES: dict[Status, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


class AgentHealth(msgspec.Struct, kw_only=True):
    status: AgentState
    run_id: UUID | None = None
    host: str | None = None
    pid: int | None = None
    started_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    heartbeat_age: float | None = None
    candles_processed: int | None = None
    stop_reason: str | None = None
    feed: FeedState | None = None
    feed_source: str | None = None
    feed_lag: float | None = None  # seconds, at the last heartbeat
    last_candle_at: datetime | None = None  # the last recorded candle's close
    reconnects: int | None = None


class ProjectionHealth(msgspec.Struct, kw_only=True):
    name: str
    position: int
    lag: int | None
    error: str | None = None  # "<exception type>: <message>": it stopped on the event at error_position
    error_position: int | None = None
    error_at: datetime | None = None  # when it first failed there


def stopped_text(error: str, position: int | None, at: datetime | None) -> str:
    """How every report says that a projection stopped on an event."""
    since = f" since {at:%Y-%m-%d %H:%M:%S} UTC" if at is not None else ""
    return f"stopped at position {position}{since}: {error}"


class HealthReport(msgspec.Struct, kw_only=True):
    status: Status
    exit_code: int
    checked_at: datetime
    reasons: list[str]
    store_reachable: bool
    head: int | None
    agent: AgentHealth
    projections: list[ProjectionHealth]
    open_connections: int | None


def agent_health(run: AgentRunRow | None, *, now: datetime, heartbeat_interval: float) -> AgentHealth:
    if run is None:
        return AgentHealth(status="none")
    last = run.last_heartbeat_at or run.started_at
    age = (now - last).total_seconds()
    status: AgentState = (
        "stopped" if run.stopped else "stale" if age > STALE_AFTER_INTERVALS * heartbeat_interval else "running"
    )
    feed: FeedState = run.feed_state if status == "running" and run.feed_state in ("lagging", "down") else (
        "live" if status == "running" else "down")  # type: ignore[assignment]
    return AgentHealth(status=status, run_id=run.run_id, host=run.host, pid=run.pid, started_at=run.started_at,
                       last_heartbeat_at=run.last_heartbeat_at, heartbeat_age=age,
                       candles_processed=run.candles_processed, stop_reason=run.stop_reason, feed=feed,
                       feed_source=run.feed_source or None, feed_lag=run.feed_lag, last_candle_at=run.last_candle_at,
                       reconnects=run.reconnects)


def latest_run(runs: Sequence[AgentRunRow]) -> AgentRunRow | None:
    return max(runs, key=lambda r: r.started_position, default=None)


def assess(*, now: datetime, head: int | None, agent: AgentHealth, projections: list[ProjectionHealth],
           open_connections: int | None) -> HealthReport:
    """Apply the health rule in the module docstring."""
    unhealthy = [
        *(["event store unreachable"] if head is None else []),
        *(f"projection {p.name} {stopped_text(p.error, p.error_position, p.error_at)}" for p in projections
          if p.error is not None),
        *([f"agent is stale: no heartbeat for {agent.heartbeat_age:.0f}s"] if agent.status == "stale" else []),
    ]
    degraded = [
        *([f"agent is {agent.status}"] if agent.status in ("stopped", "none") else []),
        *([f"feed {agent.feed_source or ''} is {agent.feed}: lag {agent.feed_lag or 0:.0f}s".replace("  ", " ")]
          if agent.status == "running" and agent.feed in ("lagging", "down") else []),
        *(f"projection {p.name} lags by {p.lag} events" for p in projections
          if p.lag is not None and p.lag > MAX_HEALTHY_LAG),
    ]
    status: Status = "unhealthy" if unhealthy else "degraded" if degraded else "healthy"
    return HealthReport(status=status, exit_code=EXIT_CODES[status], checked_at=now, reasons=unhealthy + degraded,
                        store_reachable=head is not None, head=head, agent=agent, projections=projections,
                        open_connections=open_connections)
