"""The connections read model's rows and tables (the fold that fills them is in projections.connections)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.projections.rows import RowTable


class GatewayRow(msgspec.Struct, kw_only=True):
    gateway_id: UUID
    kind: str
    host: str
    pid: int
    started_at: datetime
    stopped_at: datetime | None
    stop_reason: str | None


class SessionRow(msgspec.Struct, kw_only=True):
    gateway_id: UUID
    session_id: str
    channel: str
    peer: str
    connected_at: datetime


GATEWAYS = RowTable.of(GatewayRow, "connections_gateways", primary_key=["gateway_id"], types={"pid": sa.Integer})
SESSIONS = RowTable.of(SessionRow, "connections_sessions", primary_key=["gateway_id", "session_id"])
