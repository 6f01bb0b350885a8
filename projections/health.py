"""The agent runs read model: one row per agent run, from its Started, Heartbeats and Stopped.

What the rows mean for health (stale, stopped, the overall status) is decided when read, by the
clock: projections.health_rule.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tradeledger.domain.agent_run import AgentRun
from tradeledger.projections.fold import Fold, EventHandler, Projection
from tradeledger.projections.health_rows import AGENT_RUNS, AgentRunRow
from tradeledger.projections.rows import RowSource, Sink


class HealthFold(Fold):
    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self.runs: dict[UUID, AgentRunRow] = {}

    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {AgentRun.Started: self.started, AgentRun.Heartbeat: self.heartbeat, AgentRun.Stopped: self.stopped}

    @classmethod
    def restore(cls, rows: RowSource[Any], sink: Sink) -> HealthFold:
        fold = cls(sink)
        fold.runs = {r.run_id: r for r in rows(AGENT_RUNS) if not r.stopped}  # stopped runs never change
        return fold

    def started(self, e: AgentRun.Started, position: int) -> None:
        run = self.runs[e.originator_id] = AgentRunRow(
            run_id=e.originator_id, version=e.version, host=e.host, pid=e.pid, model=e.model,
            config_digest=e.config_digest, started_at=e.timestamp, started_position=position,
            last_heartbeat_at=None, candles_processed=0, feed_lag=0.0, stopped=False, stopped_at=None,
            stop_reason=None, clean=None,
        )
        self.sink.put(AGENT_RUNS, run)

    def heartbeat(self, e: AgentRun.Heartbeat, _position: int) -> None:
        run = self.runs[e.originator_id]
        run.last_heartbeat_at, run.candles_processed, run.feed_lag = e.at, e.candles_processed, e.feed_lag
        run.feed_source, run.feed_state, run.last_candle_at, run.reconnects = (
            e.feed_source, e.feed_state, e.last_candle_at, e.reconnects)
        self.sink.put(AGENT_RUNS, run)

    def stopped(self, e: AgentRun.Stopped, _position: int) -> None:
        run = self.runs.pop(e.originator_id)
        run.stopped, run.stopped_at, run.stop_reason, run.clean = True, e.timestamp, e.reason, e.clean
        self.sink.put(AGENT_RUNS, run)


HEALTH_PROJECTION = Projection("health", (AGENT_RUNS,), HealthFold)
