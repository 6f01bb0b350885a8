"""One API or Telegram process: the client sessions it served."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from tradeledger.domain import errors
from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.ids import gateway_id
from tradeledger.domain.values import require_utc


class Gateway(LedgerAggregate):
    class Started(Aggregate.Created):
        kind: str
        host: str
        pid: int

    class ClientConnected(Aggregate.Event):
        session_id: str
        channel: str
        peer: str

        def apply(self, gateway: Gateway) -> None:
            gateway.sessions[self.session_id] = self.timestamp

    class ClientDisconnected(Aggregate.Event):
        session_id: str
        reason: str
        duration: float

        def apply(self, gateway: Gateway) -> None:
            gateway.sessions.pop(self.session_id)

    class CommandRefused(Aggregate.Event):
        channel: str
        peer: str
        command: str
        reason: str

    class Stopped(Aggregate.Event):
        reason: str

        def apply(self, gateway: Gateway) -> None:
            gateway.stopped = True

    def __init__(self, kind: str, host: str, pid: int) -> None:
        self.kind = kind
        self.sessions: dict[str, datetime] = {}
        self.stopped = False

    @classmethod
    def start(cls, *, key: str, kind: str, host: str, pid: int, at: datetime) -> Gateway:
        return cls._create(
            cls.Started, id=gateway_id(key), kind=kind, host=host, pid=pid, timestamp=require_utc("at", at)
        )

    def connect_client(self, *, session_id: str, channel: str, peer: str, at: datetime) -> None:
        self._require_running()
        if session_id in self.sessions:
            raise errors.DomainError(f"session {session_id} is already connected")
        self.trigger_event(
            self.ClientConnected, session_id=session_id, channel=channel, peer=peer, timestamp=require_utc("at", at)
        )

    def disconnect_client(self, *, session_id: str, reason: str, at: datetime) -> None:
        try:
            since = self.sessions[session_id]
        except KeyError:
            raise errors.DomainError(f"session {session_id} is not connected") from None
        at = require_utc("at", at)
        self.trigger_event(
            self.ClientDisconnected,
            session_id=session_id,
            reason=reason,
            duration=(at - since).total_seconds(),
            timestamp=at,
        )

    def refuse_command(self, *, channel: str, peer: str, command: str, reason: str, at: datetime) -> None:
        self.trigger_event(
            self.CommandRefused, channel=channel, peer=peer, command=command, reason=reason, timestamp=require_utc("at", at)
        )

    def stop(self, *, reason: str, at: datetime) -> None:
        self._require_running()
        at = require_utc("at", at)
        for session_id in list(self.sessions):
            self.disconnect_client(session_id=session_id, reason=f"gateway stopped: {reason}", at=at)
        self.trigger_event(self.Stopped, reason=reason, timestamp=at)

    def _require_running(self) -> None:
        if self.stopped:
            raise errors.DomainError(f"gateway {self.id} has stopped")
