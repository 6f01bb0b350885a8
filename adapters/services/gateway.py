"""A gateway process's Gateway stream: started, its client sessions, refused commands, stopped.

One service for every gateway (the API server, the Telegram bot). One writer
task owns the Gateway aggregate. Callers hand it commands (connect,
disconnect, refuse) and await the outcome; the writer applies every command
waiting at that moment and appends them in one transaction, so a thousand
WebSocket clients connecting at once cost a handful of appends, not a
thousand. Only this process writes its Gateway stream, so a failed append
cannot be a lost race: the writer reloads the stream and reports the error to
the waiters.

The Telegram bot's allowed chats are client sessions from start to stop: the
bot pushes alerts to them and takes their commands, so the connections view
and the health view count them like open WebSockets; `start` records them in
the same append as Started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.adapters.services.ports import Clock
from tradeledger.domain.gateway import Gateway

log = logging.getLogger(__name__)


class Connect(NamedTuple):
    session_id: str
    channel: str
    peer: str


class Disconnect(NamedTuple):
    session_id: str
    reason: str


class Refuse(NamedTuple):
    channel: str
    peer: str
    command: str
    reason: str


Command = Connect | Disconnect | Refuse


class GatewayClosed(Exception):
    """The gateway has not started, or has stopped (or is stopping): its Stopped closes what is still open."""


class GatewaySessions:
    def __init__(self, store: LedgerStore, *, kind: str, clock: Clock) -> None:
        self.store = store
        self.kind = kind
        self.clock = clock
        self.gateway: Gateway | None = None
        self.pending: asyncio.Queue[tuple[Command, asyncio.Future[None]]] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def gateway_id(self) -> str:
        return str(self.gateway.id) if self.gateway else ""

    async def start(self, sessions: Sequence[Connect] = ()) -> None:
        """Record Started, with `sessions` open from the start; then take commands."""
        host, pid, at = socket.gethostname(), os.getpid(), self.clock()
        gateway = Gateway.start(key=f"{self.kind}:{host}:{pid}:{uuid.uuid4()}", kind=self.kind, host=host, pid=pid,
                                at=at)
        for session in sessions:
            self.apply(gateway, session, at)
        await asyncio.to_thread(self.store.save, gateway)
        self.gateway = gateway
        self.writer = asyncio.create_task(self.write(), name=f"{self.kind}-gateway-writer")

    async def connect(self, *, channel: str, peer: str) -> str:
        session_id = uuid.uuid4().hex
        await self.submit(Connect(session_id, channel, peer))
        return session_id

    async def disconnect(self, session_id: str, reason: str) -> None:
        await self.submit(Disconnect(session_id, reason))

    async def refuse(self, *, channel: str, peer: str, command: str, reason: str) -> None:
        """Record a refused command (who, what, why); it has no other effect."""
        await self.submit(Refuse(channel, peer, command, reason))

    async def submit(self, command: Command) -> None:
        if self.closed or self.writer is None:
            raise GatewayClosed(f"the {self.kind} gateway {self.gateway_id} is not running")
        done = asyncio.get_running_loop().create_future()
        await self.pending.put((command, done))
        await done

    async def stop(self, reason: str) -> None:
        """Record Stopped; sessions still open are closed by the aggregate in the same append.

        Nothing to record when it never started or has stopped.
        """
        self.closed = True  # what is queued is still written; later commands are refused, not left waiting
        if self.writer is not None:
            await self.pending.join()
            self.writer.cancel()
            await asyncio.gather(self.writer, return_exceptions=True)
        if self.gateway is not None and not self.gateway.stopped:
            self.gateway.stop(reason=reason, at=self.clock())
            await asyncio.to_thread(self.store.save, self.gateway)

    async def write(self) -> None:
        while True:
            batch = [await self.pending.get()]
            while not self.pending.empty():
                batch.append(self.pending.get_nowait())
            error = await self.append(batch)
            for _command, done in batch:
                if not done.done():
                    done.set_exception(error) if error else done.set_result(None)
                self.pending.task_done()

    async def append(self, batch: list[tuple[Command, asyncio.Future[None]]]) -> Exception | None:
        assert self.gateway is not None
        at = self.clock()
        for command, done in batch:
            try:
                self.apply(self.gateway, command, at)
            except Exception as error:  # a rule the aggregate refuses fails this command only
                done.set_exception(error)
        try:
            await asyncio.to_thread(self.store.save, self.gateway)
        except Exception as error:
            log.exception("recording %d change(s) of the %s gateway failed", len(batch), self.kind)
            self.gateway = await asyncio.to_thread(self.reload)
            return error
        return None

    def reload(self) -> Gateway:
        """The stream as stored: what a failed append had applied in memory is gone."""
        assert self.gateway is not None
        stored: Gateway = self.store.repository.get(self.gateway.id)
        return stored

    @staticmethod
    def apply(gateway: Gateway, command: Command, at: datetime) -> None:
        if isinstance(command, Connect):
            gateway.connect_client(session_id=command.session_id, channel=command.channel, peer=command.peer, at=at)
        elif isinstance(command, Disconnect):
            gateway.disconnect_client(session_id=command.session_id, reason=command.reason, at=at)
        else:
            gateway.refuse_command(channel=command.channel, peer=command.peer, command=command.command,
                                   reason=command.reason, at=at)
