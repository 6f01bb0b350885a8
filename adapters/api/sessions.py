"""This API process's Gateway stream: started, every client session, stopped.

One writer task owns the Gateway aggregate. Connection handlers hand it
connect/disconnect commands and await the outcome; the writer applies every
command waiting at that moment and appends them in one transaction, so a
thousand clients connecting at once cost a handful of appends, not a thousand.
Only this process writes its Gateway stream, so a failed append cannot be a
lost race: the writer reloads the stream and reports the error to the waiters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.domain.gateway import Gateway

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Connect(NamedTuple):
    session_id: str
    channel: str
    peer: str


class Disconnect(NamedTuple):
    session_id: str
    reason: str


Command = Connect | Disconnect


class SessionLogClosed(Exception):
    """The gateway has stopped (or is stopping): its Stopped closes what is still open."""


class SessionLog:
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

    async def start(self) -> None:
        host, pid = socket.gethostname(), os.getpid()
        self.gateway = Gateway.start(key=f"{self.kind}:{host}:{pid}:{uuid.uuid4()}", kind=self.kind, host=host,
                                     pid=pid, at=self.clock())
        await asyncio.to_thread(self.store.save, self.gateway)
        self.writer = asyncio.create_task(self.write(), name="gateway-writer")

    async def connect(self, *, channel: str, peer: str) -> str:
        session_id = uuid.uuid4().hex
        await self.submit(Connect(session_id, channel, peer))
        return session_id

    async def disconnect(self, session_id: str, reason: str) -> None:
        await self.submit(Disconnect(session_id, reason))

    async def submit(self, command: Command) -> None:
        if self.closed:
            raise SessionLogClosed(f"gateway {self.gateway_id} is stopping")
        done = asyncio.get_running_loop().create_future()
        await self.pending.put((command, done))
        await done

    async def stop(self, reason: str) -> None:
        """Record Stopped; sessions still open are closed by the aggregate in the same append."""
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
                self.apply(command, at)
            except Exception as error:  # a rule the aggregate refuses fails this command only
                done.set_exception(error)
        try:
            await asyncio.to_thread(self.store.save, self.gateway)
        except Exception as error:
            log.exception("recording %d client session change(s) failed", len(batch))
            self.gateway = await asyncio.to_thread(self.reload)
            return error
        return None

    def reload(self) -> Gateway:
        """The stream as stored: what a failed append had applied in memory is gone."""
        assert self.gateway is not None
        stored: Gateway = self.store.repository.get(self.gateway.id)
        return stored

    def apply(self, command: Command, at: datetime) -> None:
        assert self.gateway is not None
        if isinstance(command, Connect):
            self.gateway.connect_client(session_id=command.session_id, channel=command.channel,
                                        peer=command.peer, at=at)
        else:
            self.gateway.disconnect_client(session_id=command.session_id, reason=command.reason, at=at)
