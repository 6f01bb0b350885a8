"""The audit log view: stored events as plain records, paged and filtered by type.

Each record carries both clocks: `at`, the business time (the market time the
event is about), and `recorded_at`, the wall clock when it was appended (for an
event stored before 0.2, which has none, its business time).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.persistence import Notification

from tradeledger.adapters.audit import read_log
from tradeledger.adapters.topics import event_types
from tradeledger.adapters.eventstore import ChainedMapper, LedgerStore, recorded_times, split_state

MAX_PAGE = 10_000
EVENT_TYPES = event_types()


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    stream: str
    version: int
    type: str
    at: datetime
    recorded_at: datetime
    data: dict[str, Any]


def event_type(topic: str) -> str:
    return topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]


def to_record(n: Notification) -> EventRecord:
    payload = split_state(n.state)[1]
    event = ChainedMapper.decode(n.topic, n.originator_id, n.originator_version, payload)
    data = {k: v for k, v in vars(event).items() if k not in ("originator_id", "originator_version", "timestamp",
                                                             "originator_topic")}
    return EventRecord(position=n.id, stream=str(n.originator_id), version=n.originator_version,
                       type=event_type(n.topic), at=event.timestamp, recorded_at=recorded_times(payload).recorded,
                       data=msgspec.to_builtins(data))


def records(store: LedgerStore) -> Iterator[EventRecord]:
    """The whole log, in position order."""
    return (to_record(n) for n in read_log(store))


def unknown_types(types: list[str]) -> list[str]:
    return [t for t in types if t not in EVENT_TYPES]


def page(store: LedgerStore, *, after: int = 0, limit: int = 100, types: list[str] | None = None) -> list[EventRecord]:
    """Up to `limit` events after a log position, optionally only of the given types."""
    if limit < 1 or limit > MAX_PAGE:
        raise ValueError(f"limit: expected 1..{MAX_PAGE}, got {limit}")
    if after < 0:
        raise ValueError(f"after: expected a position >= 0, got {after}")
    bad = unknown_types(types or [])
    if bad:
        raise ValueError(f"type: unknown event type {', '.join(bad)}; known: {', '.join(sorted(EVENT_TYPES))}")
    topics = [topic for t in types or [] for topic in EVENT_TYPES[t]]
    notifications = store.recorder.select_notifications(
        start=after, limit=limit, topics=topics, inclusive_of_start=False
    )
    return [to_record(n) for n in notifications]
