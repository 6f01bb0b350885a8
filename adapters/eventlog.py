"""The one way to read the event log: pages of recorded events, by type, the first of a type, the head, wake-ups.

Every reader goes through `EventLog`: the projection runner and rebuilds, the
API's follower and audit log, the CLI's `events` and `export`, the audit
checks, reproduce and the agent's warm-up.

Pages are read with one query on the event table (its layout is owned by
migration 0001), on the driver's own cursor, instead of
`recorder.select_notifications`: on SQLite that reads ~800k rows/s against
~190k/s, because the recorder builds a Notification and parses a UUID per
row (and SQLAlchemy rows cost a third more), and a rebuild reads every event.
A filter by type matches every topic the type is stored under, those of
release 0.1.0 included (`adapters.topics`).

`decode` is the one function that turns a stored row into its domain event;
a `Recorded` calls it only when a fold first reads the event.

Wake-ups (`watch`): every append made through this process's store, and on
PostgreSQL the library's LISTEN/NOTIFY subscription for appends made by
other processes. SQLite has no such subscription: the runner polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
import sqlalchemy as sa
from eventsourcing.utils import resolve_topic

from tradeledger.adapters.database import EVENT_TABLES, POSITIONS
from tradeledger.adapters.eventstore import DIGEST_SIZE, ChainedMapper, LedgerStore, recorded_times
from tradeledger.adapters.services.ports import EventType, scan, walk
from tradeledger.adapters.topics import event_types, stored_topics
from tradeledger.projections.fold import Recorded, Undecodable

logger = logging.getLogger(__name__)

EVENT_TYPES = event_types()

# DB-API statements, run on the driver's cursor: SQLAlchemy's row objects cost a third of the read.
# `{topics}` is empty, or a filter on the stored topic.
PAGE_QUERIES = {
    dialect: f"SELECT {POSITIONS[dialect]}, originator_id, originator_version, topic, state "
             f"FROM {EVENT_TABLES[dialect]} WHERE {POSITIONS[dialect]} > {mark}{{topics}} "
             f"ORDER BY {POSITIONS[dialect]} LIMIT {mark}"
    for dialect, mark in (("sqlite", "?"), ("postgresql", "%s"))  # each driver's parameter mark
}


def topic_filter(dialect: str, count: int) -> str:
    if dialect == "sqlite":
        return f" AND topic IN ({', '.join('?' * count)})"
    return " AND topic = ANY(%s)"


class StoredRow(NamedTuple):
    """A stored event exactly as recorded: `state` is `digest || payload` (the audit checks need both)."""

    position: int
    stream: UUID | Any  # anything else only in a malformed row (services.audit reports it)
    version: int
    topic: str
    state: bytes | None


def decode(topic: str, stream: UUID, version: int, state: bytes) -> Any:
    """The domain event of a stored row (`state` with its digest). Raises if the payload does not decode."""
    return ChainedMapper.decode(topic, stream, version, bytes(state[DIGEST_SIZE:]))


def decode_view(view: type[Any], _topic: str, stream: UUID, _version: int, state: bytes) -> Any:
    """The fields `view` names (`projections.fold.event_view`) of a stored row's payload; raises like `decode`."""
    decoded = _view_decoder(view).decode(memoryview(state)[DIGEST_SIZE:])
    decoded.originator_id = stream
    return decoded


@lru_cache(maxsize=None)
def _view_decoder(view: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(view)


def _clocks(_topic: str, _stream: UUID, _version: int, state: bytes) -> tuple[datetime, datetime]:
    times = recorded_times(memoryview(state)[DIGEST_SIZE:])
    return times.timestamp, times.recorded


def stored_topics_of(types: Sequence[EventType]) -> list[str]:
    """Every stored topic of these event classes or short type names; ValueError names an unknown name."""
    unknown = [t for t in types if isinstance(t, str) and t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"type: unknown event type {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}")
    return [topic for t in types for topic in (EVENT_TYPES[t] if isinstance(t, str) else stored_topics(t))]


class EventLog:
    """The event log of one store: implements `services.ports.EventLogPort` and the runner's `EventFeed`."""

    def __init__(self, store: LedgerStore, engine: sa.Engine) -> None:
        self.store = store
        self.engine = engine
        self.dialect = engine.dialect.name
        self.stream_ids: dict[Any, UUID] = {}  # SQLite returns ids as text; there are few streams
        self.types: dict[str, type] = {}

    # -- reading --------------------------------------------------------------

    def read(self, after: int, limit: int, types: Sequence[EventType] | None = None) -> list[Recorded]:
        return [self.recorded(*row) for row in self.rows(after, limit, types)]

    def stored(self, after: int, limit: int) -> list[StoredRow]:
        """Up to `limit` raw stored rows after a log position, in log order.

        A malformed row (an id that is not a UUID, a NULL state) comes as stored, for the auditor to report.
        """
        return [StoredRow(position, self.stored_id(stream), version, topic, None if state is None else bytes(state))
                for position, stream, version, topic, state in self.rows(after, limit)]

    def stored_id(self, stream: Any) -> UUID | Any:
        try:
            return self.stream_id(stream)
        except (TypeError, ValueError):
            return stream

    def scan_stored(self, after: int = 0) -> Iterator[StoredRow]:
        """Every raw stored row after a position, in log order."""
        return walk(self.stored, after)

    def first(self, type_: EventType) -> Recorded | None:
        page = self.read(0, 1, [type_])
        return page[0] if page else None

    def head(self) -> int:
        return self.store.head_position()

    def rows(self, after: int, limit: int, types: Sequence[EventType] | None = None) -> list[tuple[Any, ...]]:
        topics = stored_topics_of(types) if types else []
        query = PAGE_QUERIES[self.dialect].format(topics=topic_filter(self.dialect, len(topics)) if topics else "")
        params: tuple[Any, ...] = (after, limit) if not topics else (
            (after, *topics, limit) if self.dialect == "sqlite" else (after, topics, limit))
        with self.engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(query, params)
                return cursor.fetchall()
            finally:
                cursor.close()

    def recorded(self, position: int, stream: Any, version: int, topic: str, state: bytes) -> Recorded:
        originator_id = self.stored_id(stream)
        event_type = self.types.get(topic)
        if event_type is None or not isinstance(originator_id, UUID):
            try:
                if not isinstance(originator_id, UUID):
                    raise ValueError(f"originator_id {stream!r} is not a UUID")  # a malformed row
                event_type = self.types[topic] = resolve_topic(topic)
            except Exception as error:  # noqa: BLE001 - every fold that meets it stops and reports it
                undecodable = Recorded(position, Undecodable(topic=topic, error=f"{type(error).__name__}: {error}"))
                undecodable.stream, undecodable.version = originator_id, version
                return undecodable
        # Decoded only if a fold reads it; a payload that fails to decode fails that fold.
        return Recorded.lazy(position, event_type, originator_id, version, (topic, originator_id, version, state),
                             decode, _clocks, decode_view)

    def stream_id(self, stream: Any) -> UUID:
        originator_id = self.stream_ids.get(stream)
        if originator_id is None:
            originator_id = self.stream_ids[stream] = stream if isinstance(stream, UUID) else UUID(stream)
        return originator_id

    # -- writing --------------------------------------------------------------

    def append(self, events: Sequence[Any]) -> int:
        return self.store.append(events)

    def append_positions(self, events: Sequence[Any]) -> Sequence[int]:
        """`append`, returning each event's log position."""
        return self.store.append_positions(events)

    def get(self, stream_id: UUID) -> Any:
        return self.store.repository.get(stream_id)

    # -- following ------------------------------------------------------------

    @contextmanager
    def watch(self, wake: Callable[[], None]) -> Iterator[None]:
        """Call `wake()` (from another thread) whenever something may have been appended."""
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


def _forward(subscription: Any, wake: Callable[[], None]) -> None:
    # Only the fact that something was appended matters; the runner reads the events itself.
    try:
        with subscription:
            for _notification in subscription:
                wake()
    except Exception:
        logger.exception("LISTEN/NOTIFY subscription failed; the runner falls back to polling")


# -- the audit view ---------------------------------------------------------------

MAX_PAGE = 10_000  # events per page of the audit view (API `/events`, CLI `events`)
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored event as the audit log shows it, with both clocks: `at`, the business time (the market time the
    event is about), and `recorded_at`, the wall clock when it was appended (for an event stored before 0.2,
    which has none, its business time)."""

    position: int
    stream: str
    version: int
    type: str
    at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class UndecodableEvent(RuntimeError):
    """A stored event names a topic no event class answers to."""


def to_record(recorded: Recorded) -> EventRecord:
    event = recorded.event
    if isinstance(event, Undecodable):
        raise UndecodableEvent(f"stored event at position {recorded.position} ({event.topic}) cannot be decoded: "
                               f"{event.error}")
    data = {k: v for k, v in vars(event).items() if k not in ENVELOPE}
    return EventRecord(position=recorded.position, stream=str(recorded.stream), version=event.originator_version,
                       type=recorded.type.__name__, at=recorded.at, recorded_at=recorded.recorded_at,
                       data=msgspec.to_builtins(data))


def audit_page(log: EventLog, *, after: int = 0, limit: int = 100, types: Sequence[str] | None = None
               ) -> list[EventRecord]:
    """Up to `limit` events after a log position, optionally only of the given types."""
    if limit < 1 or limit > MAX_PAGE:
        raise ValueError(f"limit: expected 1..{MAX_PAGE}, got {limit}")
    if after < 0:
        raise ValueError(f"after: expected a position >= 0, got {after}")
    return [to_record(r) for r in log.read(after, limit, types)]


def records(log: EventLog) -> Iterator[EventRecord]:
    """The whole log, in position order."""
    return (to_record(r) for r in scan(log))
