"""The agent runs read model's rows and table (the fold that fills them is in projections.health)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.projections.rows import RowTable


class AgentRunRow(msgspec.Struct, kw_only=True):
    run_id: UUID
    version: str
    host: str
    pid: int
    model: str
    config_digest: str
    started_at: datetime
    started_position: int
    last_heartbeat_at: datetime | None
    candles_processed: int
    feed_lag: float
    stopped: bool
    stopped_at: datetime | None
    stop_reason: str | None
    clean: bool | None
    feed_source: str = ""
    feed_state: str = ""  # as the agent's last heartbeat judged it; "" before 0.3
    last_candle_at: datetime | None = None
    reconnects: int = 0


AGENT_RUNS = RowTable.of(AgentRunRow, "health_agent_runs", primary_key=["run_id"], types={"pid": sa.Integer})
