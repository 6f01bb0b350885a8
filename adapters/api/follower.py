"""One log follower per API process, fanning updates out to the open connections.

The follower reads the notification log after the last position it has
published, renders each page once (every connection sends the same encoded
text) and offers it to each connection's bounded queue. It wakes on:
- appends made through this process's store (`LedgerStore.on_append`);
- PostgreSQL NOTIFY, which the recorder sends on every insert, for appends
  made by other processes (the agent, other replicas);
- a poll timer on SQLite, which has no cross-process notification.

A connection whose queue is full is not blocked on and does not block anyone:
it is marked lagged, and its handler reads what it missed from the store
itself before taking live updates again. The set of subscriptions belongs to
the follower; connection handlers only enter and leave it through
`subscribe()`, all on the event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple, Protocol

from eventsourcing.persistence import Notification
from psycopg.sql import SQL, Identifier

from adapters.eventstore import LedgerStore

log = logging.getLogger(__name__)

PAGE_SIZE = 500
RETRY_SECONDS = 1.0
LISTEN_TIMEOUT = 0.5


class Outgoing(NamedTuple):
    """One server message, already encoded, and the log position that produced it."""

    position: int
    topic: str
    text: str


class Update(NamedTuple):
    """The messages rendered from one page of the log, up to and including position `last`."""

    last: int
    messages: tuple[Outgoing, ...]


Render = Callable[[Sequence[Notification]], list[Outgoing]]


class LogReader:
    """Reads rendered pages of the log: used by the follower and by each connection's catch-up."""

    def __init__(self, store: LedgerStore, render: Render, page_size: int = PAGE_SIZE) -> None:
        self.store = store
        self.render = render
        self.page_size = page_size

    def read(self, after: int) -> Update:
        """The next page after `after` (blocking); `last == after` when there is nothing newer."""
        page = self.store.recorder.select_notifications(start=after, limit=self.page_size,
                                                        inclusive_of_start=False)
        if not page:
            return Update(after, ())
        return Update(page[-1].id, tuple(self.render(page)))

    def head(self) -> int:
        return self.store.head_position()


class Lagged:
    """The queue overflowed: the connection must read what it missed from the store."""


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
        try:
            self.queue.put_nowait(None)  # wakes a handler waiting in next()
        except asyncio.QueueFull:
            pass  # a full queue means the handler is not waiting: it sees `stopped` next

    def request_catch_up(self) -> None:
        """The handler reads from its own position in the store before taking queued updates."""
        self.lagged = True

    async def next(self) -> Update | Lagged:
        # Checked before waiting: lagged is only set while the queue is full, so
        # a handler blocked on an empty queue cannot miss it.
        if self.stopped:
            raise FollowerStopped(self.stopped)
        if self.lagged:
            self.discard_queued()  # the catch-up reads all of it from the store
            self.lagged = False
            return LAGGED
        update = await self.queue.get()
        if update is None or self.stopped:
            raise FollowerStopped(self.stopped or "stopped")
        return update

    def discard_queued(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


class WakeSource(Protocol):
    def start(self, wake: Callable[[], None]) -> None: ...

    def stop(self) -> None: ...


class InProcessAppends:
    """Wakes on appends made through this process's store."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.listener: Callable[[int], None] | None = None

    def start(self, wake: Callable[[], None]) -> None:
        self.listener = lambda _position: wake()
        self.store.on_append(self.listener)

    def stop(self) -> None:
        if self.listener in self.store.append_listeners:
            self.store.append_listeners.remove(self.listener)


class PostgresNotifications:
    """Wakes on the NOTIFY the PostgreSQL recorder sends after each insert, from any process."""

    def __init__(self, store: LedgerStore) -> None:
        self.recorder = store.recorder
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, wake: Callable[[], None]) -> None:
        self.thread = threading.Thread(target=self.listen, args=(wake,), name="log-follower-listen", daemon=True)
        self.thread.start()

    def listen(self, wake: Callable[[], None]) -> None:
        while not self.stopping.is_set():
            try:
                with self.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
                    conn.execute(SQL("LISTEN {0}").format(Identifier(self.recorder.channel_name)))  # type: ignore[attr-defined]
                    wake()  # appends made while (re)connecting raised no notification we could hear
                    while not self.stopping.is_set():
                        for _ in conn.notifies(timeout=LISTEN_TIMEOUT, stop_after=1):
                            wake()
            except Exception:
                log.exception("LISTEN connection lost; reconnecting")
                self.stopping.wait(RETRY_SECONDS)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()


class LogFollower:
    def __init__(
        self,
        reader: LogReader,
        *,
        wake_sources: Sequence[WakeSource],
        poll_interval: float | None,
        queue_limit: int,
    ) -> None:
        self.reader = reader
        self.wake_sources = wake_sources
        self.poll_interval = poll_interval
        self.queue_limit = queue_limit
        self.position = 0
        self.subscriptions: set[Subscription] = set()
        self.wakeup = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Follow from the current head: history is read by each connection that asks for it."""
        self.loop = asyncio.get_running_loop()
        self.position = await asyncio.to_thread(self.reader.head)
        for source in self.wake_sources:
            source.start(self.wake)
        self.task = asyncio.create_task(self.follow(), name="log-follower")

    async def stop(self, reason: str) -> None:
        for source in self.wake_sources:
            await asyncio.to_thread(source.stop)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        for subscription in self.subscriptions:
            subscription.stop(reason)

    def wake(self) -> None:
        """Thread-safe; called by the wake sources from any thread."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.wakeup.set)
        except RuntimeError:
            pass  # the loop closed between the check and the call: nobody is listening any more

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription(self.queue_limit)
        self.subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self.subscriptions.discard(subscription)

    async def follow(self) -> None:
        while True:
            # Cleared before reading, so an append committed after the read still wakes the wait.
            self.wakeup.clear()
            try:
                update = await asyncio.to_thread(self.reader.read, self.position)
            except Exception:
                log.exception("reading the event log failed; retrying")
                await self.wait(RETRY_SECONDS)
                continue
            if update.last > self.position:
                self.position = update.last
                for subscription in self.subscriptions:
                    subscription.offer(update)
                continue
            await self.wait(self.poll_interval)

    async def wait(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout)
        except TimeoutError:
            pass


def wake_sources_for(store: LedgerStore) -> list[WakeSource]:
    sources: list[WakeSource] = [InProcessAppends(store)]
    if hasattr(store.recorder, "channel_name"):  # the PostgreSQL recorder
        sources.append(PostgresNotifications(store))
    return sources
