"""What the services are written against: the event log and the wall clock.

`EventLogPort` is the log as a use case sees it: append events, load an
aggregate, read pages of recorded events (optionally of some types), the
first event of a type, the head. `adapters.eventlog.EventLog` implements it
over the event store; a test may implement it in memory.

`Clock` is the one clock type: a callable returning an aware UTC datetime.
Every component that reads the time takes one (tests pass a fixed or
stepping clock); `utcnow` is the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar
from uuid import UUID

from tradeledger.projections.fold import Recorded

Clock = Callable[[], datetime]

# An event class (`Account.OrderFilled`) or its short name (`"OrderFilled"`).
EventType = type | str
PAGE = 5000  # events per read when walking the whole log
Row = TypeVar("Row", bound="Positioned")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class EventLogPort(Protocol):
    def append(self, events: Sequence[Any]) -> int:
        """Append events atomically, in order; the log position of the last one (0 when none)."""
        ...

    def get(self, stream_id: UUID) -> Any:
        """The aggregate whose events form this stream."""
        ...

    def read(self, after: int, limit: int, types: Sequence[EventType] | None = None) -> list[Recorded]:
        """Up to `limit` events after a log position, in log order; only the given types when `types` is set."""
        ...

    def head(self) -> int:
        """The last position in the log (0 when empty)."""
        ...

    def first(self, type_: EventType) -> Recorded | None:
        """The earliest event of this type, if any."""
        ...


class Positioned(Protocol):
    @property
    def position(self) -> int: ...


def walk(read: Callable[[int, int], Sequence[Row]], after: int = 0) -> Iterator[Row]:
    """Everything `read(after, limit)` pages out after a position, in log order, PAGE at a time."""
    while True:
        page = read(after, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].position


def scan(log: EventLogPort, after: int = 0, types: Sequence[EventType] | None = None) -> Iterator[Recorded]:
    """Every event after a position (only of `types` when given), in log order."""
    return walk(lambda position, limit: log.read(position, limit, types), after)
