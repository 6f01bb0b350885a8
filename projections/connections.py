"""Open client sessions per gateway (API or Telegram process), so the count never leaks.

A session row exists from ClientConnected until ClientDisconnected. When a
gateway's Stopped arrives, every session still open on it is closed, even if
its disconnects were never recorded. (A gateway killed with -9 records no
Stopped; adapters/services/housekeeping.py records one for it.)
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tradeledger.domain.gateway import Gateway
from tradeledger.projections.connections_rows import GATEWAYS, SESSIONS, GatewayRow, SessionRow
from tradeledger.projections.fold import Fold, EventHandler, Projection
from tradeledger.projections.rows import RowSource, Sink


class ConnectionsFold(Fold):
    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self.gateways: dict[UUID, GatewayRow] = {}
        self.sessions: dict[tuple[UUID, str], SessionRow] = {}

    def handlers_by_type(self) -> dict[type, EventHandler]:
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

