"""The event store: eventsourcing's recorders, a typed msgspec mapper, hash chains.

Stored event state is `digest || payload`: the payload is the msgspec JSON of
the event's fields; the digest is SHA-256 over the previous digest of the same
stream, the stream id, the version, the topic and the payload. Editing,
removing or reordering a stored event breaks the chain at that event.

The event classes' own type hints drive decoding, so `Decimal`, aware
`datetime`, enums, UUIDs and nested structs come back as the types they were
(the library's default JSON transcoder turns a str-enum into a plain str).

Two clocks: an event's `timestamp` is its business time (the market time it
is about). The wall clock at append, its recorded time, is added to the
payload under the reserved key `recorded_at` (ISO-8601 UTC, microseconds;
one value for every event of one append), so the hash chain covers it too.
Decoding a domain event ignores that key; `recorded_times` reads it. Events
appended before 0.2 have no `recorded_at`: their recorded time is taken to
be their business time (`RecordedTimes.recorded`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from tradeledger.adapters import topics  # noqa: F401 - registers the topics of stores written by 0.1.0
from tradeledger.adapters.services.ports import Clock, utcnow
from tradeledger.adapters.sqlitestore import BatchInsertSQLiteRecorder, LedgerSQLiteFactory, Row

DIGEST_SIZE = 32
GENESIS = bytes(DIGEST_SIZE)
_ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version"})
RECORDED_AT = "recorded_at"  # reserved payload key, never an event field (tests/test_two_clocks.py checks)

_ENCODE_TIME = msgspec.json.Encoder().encode


def recorded_stamp(at: datetime) -> str:
    """The stored form of a recorded time: ISO-8601 UTC with microseconds, `2024-01-05T10:00:00.000000Z`."""
    utc = at.astimezone(timezone.utc)
    # One per append, so it shows at one tick per append: msgspec is ~4x faster than isoformat and writes a
    # non-zero fraction with all six digits; a zero fraction it leaves out, so that case takes the slow path.
    return _ENCODE_TIME(utc)[1:-1].decode() if utc.microsecond else utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RecordedTimes(msgspec.Struct, frozen=True):
    """An event's two clocks, read from its payload without decoding the event."""

    timestamp: datetime
    recorded_at: datetime | None = None  # absent in events appended before 0.2

    @property
    def recorded(self) -> datetime:
        """The recorded time; for an event stored without one, its business time (the documented rule)."""
        return self.timestamp if self.recorded_at is None else self.recorded_at


_TIMES = msgspec.json.Decoder(RecordedTimes)


def recorded_times(payload: bytes) -> RecordedTimes:
    return _TIMES.decode(payload)


def chain_digest(previous: bytes, originator_id: UUID, version: int, topic: str, payload: bytes) -> bytes:
    return _digest(previous, _id_bytes(originator_id), version, topic, payload)


def _digest(previous: bytes, id_bytes: bytes, version: int, topic: str, payload: bytes) -> bytes:
    return hashlib.sha256(b"".join((previous, id_bytes, version.to_bytes(8, "big"), _topic_bytes(topic),
                                    payload))).digest()


@lru_cache(maxsize=4096)
def _id_bytes(originator_id: UUID) -> bytes:
    return originator_id.bytes  # computed from the int on every access; an append hashes few streams


@lru_cache(maxsize=None)
def _topic_bytes(topic: str) -> bytes:
    return topic.encode()


def split_state(state: bytes) -> tuple[bytes, bytes]:
    return state[:DIGEST_SIZE], state[DIGEST_SIZE:]


class MsgspecTranscoder(Transcoder):
    """Untyped JSON, for callers that only want a dict (the audit log view)."""

    def __init__(self) -> None:
        self.encoder = msgspec.json.Encoder(decimal_format="string")

    def encode(self, obj: Any) -> bytes:
        return self.encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        return msgspec.json.decode(data)


@lru_cache(maxsize=None)
def current_topic(topic: str) -> str:
    return get_topic(resolve_topic(topic))


@lru_cache(maxsize=None)
def state_decoder(event_class: type) -> msgspec.json.Decoder[Any]:
    hints = typing.get_type_hints(event_class)
    # A field with a default was added after some events were stored: those decode with the default.
    fields = [
        (f.name, hints[f.name]) if f.default is dataclasses.MISSING else (f.name, hints[f.name], f.default)
        for f in dataclasses.fields(event_class)
        if f.name not in _ENVELOPE_FIELDS
    ]
    return msgspec.json.Decoder(msgspec.defstruct(f"{event_class.__name__}State", fields, kw_only=True))


class ChainedMapper(Mapper[UUID]):
    """Maps domain events to `StoredEvent(state=payload)` and back from `digest || payload`."""

    def __init__(self, clock: Clock = utcnow) -> None:
        transcoder = MsgspecTranscoder()
        super().__init__(transcoder=transcoder)
        self.clock = clock
        self.encode = transcoder.encoder.encode  # msgspec's own method: no Python frame per event

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID], recorded_at: str | None = None
                        ) -> StoredEvent:
        """`recorded_at`: the `recorded_stamp` of this append (read from the clock when not given)."""
        # Positional: a frozen dataclass's keywords cost a third more.
        return StoredEvent(domain_event.originator_id, domain_event.originator_version, get_topic(type(domain_event)),
                           self.payload(domain_event, recorded_at or recorded_stamp(self.clock())))

    def payload(self, domain_event: DomainEventProtocol[UUID], recorded_at: str) -> bytes:
        """The stored payload: the event's fields in their order, without the envelope, then `recorded_at`."""
        state = vars(domain_event).copy()
        del state["originator_id"], state["originator_version"]
        state[RECORDED_AT] = recorded_at
        return self.encode(state)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.decode(stored_event.topic, stored_event.originator_id, stored_event.originator_version,
                           split_state(stored_event.state)[1])

    @staticmethod
    def decode(topic: str, originator_id: UUID | str, version: int, payload: bytes) -> Any:
        cls = resolve_topic(topic)
        decoded = state_decoder(cls).decode(payload)
        state = msgspec.structs.asdict(decoded)  # in C: a third faster than a getattr loop per field
        state["originator_id"] = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        state["originator_version"] = version
        if "originator_topic" in state:  # a created event of 0.1.0 names its aggregate by the old topic
            state["originator_topic"] = current_topic(state["originator_topic"])
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


class StreamHead:
    """A stream's last seen version and digest, and its id in the forms the hash and the insert take."""

    __slots__ = ("version", "digest", "id_bytes", "id_text")

    def __init__(self, originator_id: UUID) -> None:
        self.version = 0  # none seen yet
        self.digest = GENESIS
        # A UUID formats both from its int on every access, and hashes in Python: one lookup per event.
        self.id_bytes = originator_id.bytes
        self.id_text = originator_id.hex


class ChainHeads:
    """The last (version, digest) of each stream this process has seen.

    Only a head whose version is exactly the one before an append is trusted;
    anything else is read from the recorder, so a stale cache can never link
    an event to the wrong predecessor.
    """

    def __init__(self, recorder: AggregateRecorder) -> None:
        self.recorder = recorder
        self.heads: dict[UUID, StreamHead] = {}

    def link(self, originator_id: UUID, version: int, topic: str, payload: bytes) -> Row:
        """The stored row of an event, chained to its stream's previous event; advances the stream's head."""
        head = self.heads.get(originator_id) or self.start(originator_id)
        if version == 1:
            previous = GENESIS
        elif head.version == version - 1:
            previous = head.digest
        else:
            previous = self.stored_previous(originator_id, version)
        digest = _digest(previous, head.id_bytes, version, topic, payload)
        if version >= head.version:
            head.version, head.digest = version, digest
        return head.id_text, version, topic, digest + payload

    def stored_previous(self, originator_id: UUID, version: int) -> bytes:
        last = self.recorder.select_events(originator_id, lte=version - 1, desc=True, limit=1)
        if not last or last[0].originator_version != version - 1:
            # The recorder itself would store a gap or versions out of order within one append.
            found = last[0].originator_version if last else None
            raise ValueError(f"stream {originator_id}: version {version} does not follow the stored version {found}")
        return split_state(last[0].state)[0]

    def observe(self, originator_id: UUID, version: int, digest: bytes) -> None:
        head = self.heads.get(originator_id) or self.start(originator_id)
        if version >= head.version:
            head.version, head.digest = version, digest

    def start(self, originator_id: UUID) -> StreamHead:
        head = self.heads[originator_id] = StreamHead(originator_id)
        return head

    def forget(self, originator_ids: set[UUID]) -> None:
        for originator_id in originator_ids:
            self.heads.pop(originator_id, None)


class ChainedEventStore(EventStore[UUID]):
    """Encodes, chains and inserts an append's events; each stored row is built once, as the insert's parameters."""

    def __init__(self, mapper: ChainedMapper, recorder: AggregateRecorder) -> None:
        super().__init__(mapper, recorder)
        self.chained_mapper = mapper
        self.heads = ChainHeads(recorder)
        # A mapper that overrides `to_stored_event` (tests write pre-0.2 payloads so) is asked for every event.
        self.encodes_payloads = type(mapper).to_stored_event is ChainedMapper.to_stored_event

    def put(self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any) -> list[Recording[UUID]]:
        rows, ids = self.insert(domain_events, **kwargs)
        return [] if not ids else self.recordings(domain_events, rows, ids)

    def insert(self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
               ) -> tuple[list[Row], Sequence[int]]:
        """Encode, chain and insert in one transaction; returns the rows and their log positions."""
        try:
            rows = self.rows(domain_events, recorded_stamp(self.chained_mapper.clock()))  # one clock reading
            if isinstance(self.recorder, BatchInsertSQLiteRecorder):
                ids = self.recorder.insert_rows(rows)  # `kwargs` (the library's tracking) mean nothing to it
            else:
                ids = self.recorder.insert_events([StoredEvent(e.originator_id, version, topic, state)
                                                   for e, (_, version, topic, state) in zip(domain_events, rows)],
                                                  **kwargs)
        except Exception:
            # The append did not happen: the heads we advanced are not in the store.
            self.heads.forget({e.originator_id for e in domain_events})
            raise
        return rows, ids or ()

    def rows(self, domain_events: Sequence[DomainEventProtocol[UUID]], recorded_at: str) -> list[Row]:
        """The stored row of each event, chained to its stream's head (which advances)."""
        link = self.heads.link
        if self.encodes_payloads:
            payload = self.chained_mapper.payload
            return [link(e.originator_id, e.originator_version, get_topic(type(e)), payload(e, recorded_at))
                    for e in domain_events]
        stored = (self.chained_mapper.to_stored_event(e, recorded_at) for e in domain_events)
        return [link(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]

    @staticmethod
    def recordings(
        domain_events: Sequence[DomainEventProtocol[UUID]], rows: Sequence[Row], ids: Sequence[int]
    ) -> list[Recording[UUID]]:
        return [
            Recording(d, Notification(id=n, originator_id=d.originator_id, originator_version=version, topic=topic,
                                      state=state))
            for d, (_, version, topic, state), n in zip(domain_events, rows, ids, strict=True)
        ]

    def get(self, originator_id: UUID, **kwargs: Any) -> Iterator[DomainEventProtocol[UUID]]:
        for stored in self.recorder.select_events(originator_id, **kwargs):
            self.heads.observe(stored.originator_id, stored.originator_version, split_state(stored.state)[0])
            yield self.mapper.to_domain_event(stored)


class LedgerStore(Application[UUID]):
    """The one event-sourced application every tradeledger process opens."""

    name = "tradeledger"

    def __init__(self, env: dict[str, str], *, clock: Clock = utcnow) -> None:
        """`clock`: the wall clock whose reading at each append is the events' recorded time."""
        self.clock = clock  # before the library's __init__, which constructs the mapper
        super().__init__(env=env)
        self.append_listeners: list[Callable[[int], None]] = []

    def on_append(self, listener: Callable[[int], None]) -> None:
        """Call `listener(last_position)` after every append made through this store (same process)."""
        self.append_listeners.append(listener)

    def append(self, events: Sequence[DomainEventProtocol[UUID]]) -> int:
        """Append already-collected events atomically, in the given order; returns the last position.

        `save(*events)` would do the same, but checks each event against the
        library's runtime protocols and builds a Recording per event, which
        together cost more than the insert itself.
        """
        ids = self.append_positions(events)
        return ids[-1] if ids else 0

    def append_positions(self, events: Sequence[DomainEventProtocol[UUID]]) -> Sequence[int]:
        """`append`, returning each event's log position (in the given order)."""
        assert isinstance(self.events, ChainedEventStore)
        _, ids = self.events.insert(events)
        if ids:
            self.notify_listeners(ids[-1])
        return ids

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            self.notify_listeners(recordings[-1].notification.id)

    def notify_listeners(self, position: int) -> None:
        for listener in self.append_listeners:
            listener(position)

    def construct_mapper(self) -> Mapper[UUID]:
        return ChainedMapper(self.clock)

    def construct_event_store(self) -> EventStore[UUID]:
        assert isinstance(self.mapper, ChainedMapper)
        return ChainedEventStore(self.mapper, self.recorder)

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0


def store_environment(url: str, *, read_only: bool = False, durable: bool = True) -> dict[str, str]:
    """eventsourcing settings for a database URL. Alembic creates every table.

    `read_only`: nothing can write (or create) the store: SQLite opens the file with `mode=ro`, PostgreSQL
    sessions have `default_transaction_read_only` on (adapters.pgreadonly).
    `durable=False`: SQLite commits without an fsync (`synchronous=NORMAL`, adapters.sqlitestore): safe when
    the process is killed, the last commits may be lost on a power loss. PostgreSQL commits are unchanged.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path:
            raise ValueError(f"database.url: expected sqlite:///PATH, got {url!r}")
        if read_only:
            path = f"file:{Path(path).expanduser().resolve()}?mode=ro"  # the library connects with uri=True
        return {"PERSISTENCE_MODULE": get_topic(LedgerSQLiteFactory), "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30", "CREATE_TABLE": "no",
                "APPLICATION_RECORDER_TOPIC": get_topic(BatchInsertSQLiteRecorder),
                LedgerSQLiteFactory.SQLITE_SYNCHRONOUS: "FULL" if durable else "NORMAL"}
    if scheme in ("postgresql", "postgres"):
        return {
            "PERSISTENCE_MODULE": ("tradeledger.adapters.pgreadonly:ReadOnlyPostgresFactory" if read_only
                                   else "eventsourcing.postgres"),
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
            "CREATE_TABLE": "no",
        }
    raise ValueError(f"database.url: expected a sqlite:/// or postgresql:// URL, got scheme {parts.scheme!r}")


def open_store(url: str, *, clock: Clock = utcnow, read_only: bool = False, durable: bool = True) -> LedgerStore:
    """`read_only`: every connection of the store refuses to write (for the commands that only read).

    `durable=False`: commits that survive a killed process but not a power loss (`store_environment`).
    """
    # The library reads os.environ too; ours must win so two stores in one process stay apart.
    return LedgerStore(env=store_environment(url, read_only=read_only, durable=durable), clock=clock)
