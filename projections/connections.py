"""Open client sessions per gateway (API or Telegram process), so the count never leaks.

A session row exists from ClientConnected until ClientDisconnected. When a
gateway's Stopped arrives, every session still open on it is closed, even if
its disconnects were never recorded.

Dead gateways. A gateway killed with -9 records nothing, so its sessions
would stay open forever. `close_dead_gateways` finds gateways on this host
that have not stopped but whose process (the pid in Gateway.Started) no
longer exists, and records Gateway.stop for them (which disconnects each
session in the log, then the projection closes them as above). Gateways on
other hosts are left to a process on their own host: from here we cannot
tell a dead remote process from a live one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from tradeledger.domain.errors import DomainError
from tradeledger.domain.gateway import Gateway
from tradeledger.projections.fold import Fold, Handler, Projection
from tradeledger.projections.rows import RowSource, RowTable, Sink, UtcDateTime, metadata

logger = logging.getLogger(__name__)


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


GATEWAYS = RowTable(sa.Table(
    "connections_gateways", metadata,
    sa.Column("gateway_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("stopped_at", UtcDateTime, nullable=True),
    sa.Column("stop_reason", sa.Text, nullable=True),
), GatewayRow)
SESSIONS = RowTable(sa.Table(
    "connections_sessions", metadata,
    sa.Column("gateway_id", sa.Text, primary_key=True),
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("peer", sa.Text, nullable=False),
    sa.Column("connected_at", UtcDateTime, nullable=False),
), SessionRow)


class ConnectionsFold(Fold):
    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self.gateways: dict[UUID, GatewayRow] = {}
        self.sessions: dict[tuple[UUID, str], SessionRow] = {}

    def handlers_by_type(self) -> dict[type, Handler]:
        return {Gateway.Started: self.started, Gateway.ClientConnected: self.connected,
                Gateway.ClientDisconnected: self.disconnected, Gateway.Stopped: self.stopped}

    @classmethod
    def restore(cls, rows: RowSource[Any], sink: Sink) -> ConnectionsFold:
        fold = cls(sink)
        fold.gateways = {g.gateway_id: g for g in rows(GATEWAYS) if g.stopped_at is None}
        fold.sessions = {(s.gateway_id, s.session_id): s for s in rows(SESSIONS)}
        return fold

    def started(self, e: Gateway.Started, _position: int) -> None:
        gateway = self.gateways[e.originator_id] = GatewayRow(
            gateway_id=e.originator_id, kind=e.kind, host=e.host, pid=e.pid, started_at=e.timestamp,
            stopped_at=None, stop_reason=None,
        )
        self.sink.put(GATEWAYS, gateway)

    def connected(self, e: Gateway.ClientConnected, _position: int) -> None:
        session = self.sessions[(e.originator_id, e.session_id)] = SessionRow(
            gateway_id=e.originator_id, session_id=e.session_id, channel=e.channel, peer=e.peer,
            connected_at=e.timestamp,
        )
        self.sink.put(SESSIONS, session)

    def disconnected(self, e: Gateway.ClientDisconnected, _position: int) -> None:
        self.sink.delete(SESSIONS, self.sessions.pop((e.originator_id, e.session_id)))

    def stopped(self, e: Gateway.Stopped, _position: int) -> None:
        gateway = self.gateways.pop(e.originator_id)
        gateway.stopped_at, gateway.stop_reason = e.timestamp, e.reason
        self.sink.put(GATEWAYS, gateway)
        for key in [k for k in self.sessions if k[0] == e.originator_id]:
            self.sink.delete(SESSIONS, self.sessions.pop(key))


CONNECTIONS_PROJECTION = Projection("connections", (GATEWAYS, SESSIONS), ConnectionsFold)


def dead_gateways(gateways: Iterable[GatewayRow], *, host: str, is_alive: Callable[[int], bool]) -> list[GatewayRow]:
    """Gateways on `host` that never recorded Stopped but whose process is gone."""
    return [g for g in gateways if g.stopped_at is None and g.host == host and not is_alive(g.pid)]


def close_dead_gateways(app: Application, gateways: Iterable[GatewayRow], *, host: str,
                        is_alive: Callable[[int], bool], at: datetime) -> list[UUID]:
    """Record Gateway.stop for each dead gateway on this host; returns the ids it stopped."""
    closed = []
    for row in dead_gateways(gateways, host=host, is_alive=is_alive):
        gateway: Gateway = app.repository.get(row.gateway_id)
        try:
            gateway.stop(reason=f"process {row.pid} on {host} is gone", at=at)
            app.save(gateway)
        except (DomainError, IntegrityError) as error:
            # Stopped meanwhile (by itself or another closer): nothing is left to close.
            logger.info("gateway %s was already stopped: %s", row.gateway_id, error)
            continue
        closed.append(row.gateway_id)
    return closed
