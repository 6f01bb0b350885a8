"""One WebSocket connection's sending: straight to the socket while the peer keeps up, else a bounded queue.

A message goes to the socket at once when nothing is waiting before it and the
socket takes data without waiting (the server says so: `EXTENSION`, offered by
adapters.api.wsprotocol); that is every message of a peer that keeps up, at the
cost of a direct send. Otherwise it waits in the connection's queue, which one
writer task empties in order. Two limits end a connection whose peer does not
keep up, each with its own close code (docs/api.md):
- `api.ws_send_queue` messages waiting: a live message or notice that finds
  the queue full, even after the writer's next turn, closes the connection
  with CLOSE_FELL_BEHIND (the peer reconnects with `?after=<last position it
  received>` and reads the rest from the log);
- `api.ws_send_timeout` seconds for one send: a peer that takes no data for
  that long closes it with CLOSE_STOPPED_READING.
A catch-up from the log never overflows the queue: it waits whenever the
queue is half full (`put_paced`), so it goes at the peer's pace and leaves
room for live messages and notices. No producer ever waits for the peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

CLOSE_FELL_BEHIND = 4000
CLOSE_STOPPED_READING = 4001
# The server's side of a connection (adapters.api.wsprotocol), as an ASGI scope extension:
# {"writable": () -> bool}, and the ASGI message type that drops the connection at once.
EXTENSION = "tradeledger.websocket"
ABORT = "tradeledger.websocket.abort"


class SlowConsumer(Exception):
    """The peer does not keep up: the connection is closed with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"closed {code}: {reason}")


def never() -> bool:
    return False


class SendQueue:
    def __init__(self, send: Callable[[str], Awaitable[None]], *, limit: int, timeout: float,
                 writable: Callable[[], bool] = never) -> None:
        self.send = send
        self.limit = limit
        self.timeout = timeout
        self.writable = writable  # True: a send now completes without waiting for the peer
        self.pace_at = max(1, limit // 2)
        self.queue: asyncio.Queue[str] = asyncio.Queue(limit)
        self.sending = False  # a send is in progress: whatever comes now must wait behind it

    async def put(self, text: str) -> None:
        """For live messages and notices: sent or queued now; SlowConsumer when the queue stays full."""
        if not self.sending and self.queue.empty() and self.writable():
            await self.send_once(text, bounded=False)
            return
        if self.queue.full():
            await asyncio.sleep(0)  # the writer's turn (it was woken by what filled the queue)
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            raise SlowConsumer(CLOSE_FELL_BEHIND, f"fell behind: {self.limit} messages were waiting "
                                                  "(api.ws_send_queue)") from None

    async def put_paced(self, text: str) -> None:
        """For a catch-up: waits until the queue is drained whenever it is half full."""
        if self.queue.qsize() >= self.pace_at:
            await self.queue.join()
        await self.put(text)

    async def write(self) -> None:
        """The writer: send what is queued, in order, until cancelled or a send fails or times out."""
        while True:
            text = await self.queue.get()
            try:
                await self.send_once(text, bounded=not self.writable())
            finally:
                self.queue.task_done()

    async def send_once(self, text: str, *, bounded: bool) -> None:
        # A deadline only where the send may wait for the peer: a timer per message costs as
        # much as the send itself, and with a thousand connections that is the whole budget.
        self.sending = True
        try:
            if not bounded:
                await self.send(text)
                return
            async with asyncio.timeout(self.timeout):
                await self.send(text)
        except TimeoutError:
            raise SlowConsumer(CLOSE_STOPPED_READING, f"stopped reading: a send waited {self.timeout:g}s "
                                                      "(api.ws_send_timeout)") from None
        finally:
            self.sending = False
