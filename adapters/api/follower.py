"""One log follower per API process, fanning updates out to the open connections.

The follower reads the event log after the last position it has published
(through the same `EventFeed` the projection runner reads), renders each page
once, encodes each message once (every connection sends the same text) and
offers the page to each connection's bounded queue. It wakes on what the feed
watches (appends made by this process; LISTEN/NOTIFY on PostgreSQL for other
processes) and polls every `poll_interval` for SQLite, which cannot notify
across processes.

A connection whose queue is full is never waited for and never slows the
others: it is marked lagged, and its handler reads what it missed from the
log itself before it takes queued updates again. The set of subscriptions
belongs to the follower; handlers only enter and leave it through
`subscribe()`, and everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from tradeledger.projections.fold import Recorded
from tradeledger.projections.runner import EventFeed

log = logging.getLogger(__name__)

PAGE_SIZE = 500
RETRY_SECONDS = 1.0


class Outgoing(NamedTuple):
    """One server message, already encoded, with the log position that produced it."""

    position: int
    topics: frozenset[str]
    text: str


class Update(NamedTuple):
    """The messages rendered from one page of the log, which ends at position `last`."""

    last: int
    messages: tuple[Outgoing, ...]


Render = Callable[[Sequence[Recorded]], list[Outgoing]]


class LogReader:
    """Rendered pages of the log: read by the follower and by each connection's catch-up."""

    def __init__(self, feed: EventFeed, render: Render, page_size: int = PAGE_SIZE) -> None:
        self.feed = feed
        self.render = render
        self.page_size = page_size

    def read(self, after: int) -> Update:
        """The page after `after` (blocking); `last == after` when there is nothing newer."""
        page = self.feed.read(after, self.page_size)
        if not page:
            return Update(after, ())
        return Update(page[-1].position, tuple(self.render(page)))

    def head(self) -> int:
        return self.feed.head()


class Lagged:
    """The queue overflowed: the connection must read what it missed from the log."""


LAGGED = Lagged()


class FollowerStopped(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Subscription:
    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[Update | None] = asyncio.Queue(limit)
        self.lagged = False
        self.stopped: str | None = None

    def offer(self, update: Update) -> None:
        if self.lagged or self.stopped:
            return
        try:
            self.queue.put_nowait(update)
        except asyncio.QueueFull:
            self.lagged = True

    def stop(self, reason: str) -> None:
        self.stopped = reason
        with contextlib.suppress(asyncio.QueueFull):  # full: the handler is not waiting, it sees `stopped`
            self.queue.put_nowait(None)  # wakes a handler waiting in next()

    def request_catch_up(self) -> None:
        """Make the handler read from its own position in the log before taking queued updates."""
        self.lagged = True

    async def next(self) -> Update | Lagged:
        # Checked before waiting: `lagged` is only set while the queue is full, so
        # a handler blocked on an empty queue cannot miss it.
        if self.stopped:
            raise FollowerStopped(self.stopped)
        if self.lagged:
            self.discard_queued()  # the catch-up reads all of it from the log
            self.lagged = False
            return LAGGED
        update = await self.queue.get()
        if update is None or self.stopped:
            raise FollowerStopped(self.stopped or "stopped")
        return update

    def discard_queued(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


class LogFollower:
    def __init__(self, reader: LogReader, feed: EventFeed, *, poll_interval: float, queue_limit: int) -> None:
        self.reader = reader
        self.feed = feed
        self.poll_interval = poll_interval
        self.queue_limit = queue_limit
        self.position = 0
        self.subscriptions: set[Subscription] = set()
        self.wakeup = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.watching = contextlib.ExitStack()

    async def start(self) -> None:
        """Follow from the current head: older history is read by the connections that ask for it."""
        self.loop = asyncio.get_running_loop()
        self.position = await asyncio.to_thread(self.reader.head)
        await asyncio.to_thread(self.watching.enter_context, self.feed.watch(self.wake))
        self.task = asyncio.create_task(self.follow(), name="log-follower")

    async def stop(self, reason: str) -> None:
        await asyncio.to_thread(self.watching.close)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        for subscription in self.subscriptions:
            subscription.stop(reason)

    def wake(self) -> None:
        """Thread-safe: the feed calls it from the appending thread or its LISTEN thread."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is listening
            loop.call_soon_threadsafe(self.wakeup.set)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription(self.queue_limit)
        self.subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self.subscriptions.discard(subscription)

    async def follow(self) -> None:
        while True:
            # Cleared before reading, so an append committed after the read still ends the wait.
            self.wakeup.clear()
            try:
                update = await asyncio.to_thread(self.reader.read, self.position)
            except Exception:
                log.exception("reading the event log failed; retrying in %ss", RETRY_SECONDS)
                await self.wait(RETRY_SECONDS)
                continue
            if update.last > self.position:
                self.position = update.last
                for subscription in self.subscriptions:
                    subscription.offer(update)
                continue
            await self.wait(self.poll_interval)

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout)
