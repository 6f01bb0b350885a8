"""The event log as the projection runner reads it: decoded pages, the head, and wake-ups.

Pages are read with one query on the event table (its layout is owned by
migration 0001), on the driver's own cursor, instead of
`recorder.select_notifications`: on SQLite that reads ~800k rows/s against
~190k/s, because the recorder builds a Notification and parses a UUID per
row (and SQLAlchemy rows cost a third more), and a rebuild reads every event.
Decoding goes through the store's own `ChainedMapper`, once per page.

Wake-ups: every append made through this process's store, and on PostgreSQL
the library's LISTEN/NOTIFY subscription for appends made by other
processes. SQLite has no such subscription: the runner polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.utils import resolve_topic

from tradeledger.adapters.eventstore import DIGEST_SIZE, ChainedMapper, LedgerStore, recorded_times
from tradeledger.projections.fold import Recorded, Undecodable

logger = logging.getLogger(__name__)

# DB-API statements, run on the driver's cursor: SQLAlchemy's row objects cost a third of the read.
PAGE_QUERIES = {
    "sqlite": "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
              "WHERE rowid > ? ORDER BY rowid LIMIT ?",
    "postgresql": "SELECT notification_id, originator_id, originator_version, topic, state "
                  "FROM tradeledger_events WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
}


class StoreFeed:
    def __init__(self, store: LedgerStore, engine: sa.Engine) -> None:
        self.store = store
        self.engine = engine
        self.query = PAGE_QUERIES[engine.dialect.name]
        self.stream_ids: dict[Any, UUID] = {}  # SQLite returns ids as text; there are few streams
        self.types: dict[str, type] = {}

    def read(self, after: int, limit: int) -> list[Recorded]:
        with self.engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(self.query, (after, limit))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        return [self.recorded(*row) for row in rows]

    def recorded(self, position: int, stream: Any, version: int, topic: str, state: bytes) -> Recorded:
        originator_id = self.stream_ids.get(stream)
        if originator_id is None:
            originator_id = self.stream_ids[stream] = stream if isinstance(stream, UUID) else UUID(stream)
        event_type = self.types.get(topic)
        if event_type is None:
            try:
                event_type = self.types[topic] = resolve_topic(topic)
            except Exception as error:  # noqa: BLE001 - every fold that meets it stops and reports it
                return Recorded(position, Undecodable(topic=topic, error=f"{type(error).__name__}: {error}"))
        # Decoded only if a fold reads it; a payload that fails to decode fails that fold.
        return Recorded.lazy(position, event_type, originator_id, (topic, originator_id, version, state), _decode,
                             _clocks)

    def head(self) -> int:
        return self.store.head_position()

    @contextmanager
    def watch(self, wake: Callable[[], None]) -> Iterator[None]:
        def on_append(_position: int) -> None:
            wake()

        self.store.on_append(on_append)
        try:
            with self._notifications(wake):
                yield
        finally:
            self.store.append_listeners.remove(on_append)

    @contextmanager
    def _notifications(self, wake: Callable[[], None]) -> Iterator[None]:
        try:
            subscription = self.store.recorder.subscribe(gt=self.head())
        except NotImplementedError:
            yield  # SQLite: the runner's poll interval covers other processes
            return
        thread = threading.Thread(target=_forward, args=(subscription, wake), name="projection-notify",
                                  daemon=True)
        thread.start()
        try:
            yield
        finally:
            subscription.stop()
            thread.join()


def _decode(topic: str, originator_id: UUID, version: int, state: bytes) -> object:
    return ChainedMapper.decode(topic, originator_id, version, bytes(state[DIGEST_SIZE:]))


def _clocks(_topic: str, _originator_id: UUID, _version: int, state: bytes) -> tuple[datetime, datetime]:
    times = recorded_times(memoryview(state)[DIGEST_SIZE:])
    return times.timestamp, times.recorded


def _forward(subscription: Any, wake: Callable[[], None]) -> None:
    # Only the fact that something was appended matters; the runner reads the events itself.
    try:
        with subscription:
            for _notification in subscription:
                wake()
    except Exception:
        logger.exception("LISTEN/NOTIFY subscription failed; the runner falls back to polling")
