"""This Telegram process's Gateway stream: started, its alert chats, refused commands, stopped.

Each allowed chat is a client session of the gateway from start to stop: the
bot pushes alerts to it and takes its commands, so the connections view and
the health view count it like an open WebSocket. Refused commands are
recorded (who, what, why) and have no other effect.

Only this process writes its Gateway stream, so a failed append is not a lost
race: the aggregate is reloaded from the store and the error is raised to the
caller. Calls block (run them in a thread); a lock keeps them in order.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.domain.gateway import Gateway

CHANNEL = "telegram"
KIND = "telegram"

Clock = Callable[[], datetime]


def chat_peer(chat_id: int) -> str:
    return f"chat:{chat_id}"


class GatewayLog:
    def __init__(self, store: LedgerStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.gateway: Gateway | None = None
        self.lock = threading.Lock()

    def start(self, chat_ids: Sequence[int]) -> None:
        host, pid, at = socket.gethostname(), os.getpid(), self.clock()
        with self.lock:
            gateway = Gateway.start(key=f"{KIND}:{host}:{pid}:{uuid.uuid4()}", kind=KIND, host=host, pid=pid, at=at)
            for chat in chat_ids:
                gateway.connect_client(session_id=chat_peer(chat), channel=CHANNEL, peer=chat_peer(chat), at=at)
            self.store.save(gateway)
            self.gateway = gateway

    def refuse(self, *, peer: str, command: str, reason: str) -> None:
        self._record(lambda g: g.refuse_command(channel=CHANNEL, peer=peer, command=command, reason=reason,
                                                at=self.clock()))

    def stop(self, reason: str) -> None:
        """Record Stopped (which ends every chat session); nothing to do when it never started or has stopped."""
        if self.gateway is not None and not self.gateway.stopped:
            self._record(lambda g: g.stop(reason=reason, at=self.clock()))

    def _record(self, change: Callable[[Gateway], None]) -> None:
        with self.lock:
            if self.gateway is None:
                raise RuntimeError("the Telegram gateway has not started")
            change(self.gateway)
            try:
                self.store.save(self.gateway)
            except Exception:
                self.gateway = self.store.repository.get(self.gateway.id)
                raise
