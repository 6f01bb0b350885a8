"""What every read model shares: the fold, the projection spec, and applying a batch of events.

A fold is pure: it turns domain events (with their log positions)
into rows on a sink and keeps only the working state it needs to continue.
Everything in that working state is also in its rows, so `restore` can pick
up from a database exactly where the last committed batch left off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Self
from uuid import UUID

import msgspec

from projections.rows import RowSource, RowTable, Sink

Handler = Callable[[Any, int], None]


class Undecodable(msgspec.Struct, frozen=True):
    """Stands in for a stored event whose topic names no known event class."""

    topic: str
    error: str


class Recorded:
    """One event at its log position: its type and stream up front, the event decoded on first use.

    Decoding is most of the cost of reading the log, and some folds need only
    a few events of a batch (the latest signal per market, the newest feed
    lines), so an event no fold reads is never decoded. Once decoded, every
    fold shares the same object.
    """

    __slots__ = ("position", "type", "stream", "_event", "_decode")

    def __init__(self, position: int, event: Any) -> None:
        """An event already in memory (tests, replays of in-memory aggregates)."""
        self.position = position
        self.type: type = type(event)
        self.stream: UUID | None = getattr(event, "originator_id", None)
        self._event: Any = event
        self._decode: Callable[[], object] | None = None

    @classmethod
    def lazy(cls, position: int, type_: type, stream: UUID, decode: Callable[[], object]) -> Recorded:
        """A stored event, decoded by `decode()` when a fold first reads it."""
        recorded = cls.__new__(cls)
        recorded.position, recorded.type, recorded.stream = position, type_, stream
        recorded._event, recorded._decode = None, decode
        return recorded

    @property
    def event(self) -> Any:
        if self._decode is not None:
            self._event, self._decode = self._decode(), None
        return self._event

    def __repr__(self) -> str:
        return f"Recorded({self.position}, {self.type.__qualname__})"


class FoldFailed(Exception):
    """A fold raised on the event at log position `position`."""

    def __init__(self, position: int, cause: BaseException) -> None:
        self.position = position
        self.cause = cause
        super().__init__(f"event at position {position}: {type(cause).__name__}: {cause}")


class Fold:
    """Base of every read model's fold: dispatches each event to the handler for its type."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.handlers: dict[type, Handler] = self.handlers_by_type()

    def handlers_by_type(self) -> dict[type, Handler]:
        raise NotImplementedError

    @classmethod
    def restore(cls, rows: RowSource[Any], sink: Sink) -> Self:
        """The fold as it was when `rows` were written. Folds without working state start empty."""
        return cls(sink)

    def apply(self, event: object, position: int) -> None:
        apply_all(self, [Recorded(position, event)])

    def relevant(self, events: Sequence[Recorded]) -> Sequence[Recorded]:
        """The events of a batch, in order, that give the same rows as applying all of them."""
        return events


class Projection(NamedTuple):
    name: str
    tables: tuple[RowTable[Any], ...]
    fold: type[Fold]


def apply_all(fold: Fold, events: Sequence[Recorded]) -> None:
    """Apply events in order; raise FoldFailed naming the first event the fold could not apply."""
    # The handler lookup is inlined here rather than going through `Fold.apply`:
    # this loop runs once per event per projection and dominates a rebuild.
    handlers = fold.handlers
    for recorded in fold.relevant(events):
        handler = handlers.get(recorded.type)
        try:
            if handler is not None:
                handler(recorded.event, recorded.position)
            elif recorded.type is Undecodable:
                raise ValueError(f"stored event {recorded.event.topic} cannot be decoded: {recorded.event.error}")
        except Exception as error:
            raise FoldFailed(recorded.position, error) from error
