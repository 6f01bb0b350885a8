"""What every read model shares: the fold, the projection spec, and applying a batch of events.

A fold is pure: it turns decoded domain events (with their log positions)
into rows on a sink and keeps only the working state it needs to continue.
Everything in that working state is also in its rows, so `restore` can pick
up from a database exactly where the last committed batch left off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Self

import msgspec

from projections.rows import RowSource, RowTable, Sink

Handler = Callable[[Any, int], None]


class Recorded(NamedTuple):
    """One decoded event and its position in the log."""

    position: int
    event: object


class Undecodable(msgspec.Struct, frozen=True):
    """Stands in for a stored event that could not be decoded, so no fold can silently skip it."""

    topic: str
    error: str


class FoldFailed(Exception):
    """A fold raised on the event at `index` of a batch (log position `position`)."""

    def __init__(self, index: int, position: int, cause: BaseException) -> None:
        self.index = index
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


class Projection(NamedTuple):
    name: str
    tables: tuple[RowTable[Any], ...]
    fold: type[Fold]


def apply_all(fold: Fold, events: Sequence[Recorded]) -> None:
    """Apply events in order; raise FoldFailed naming the first event the fold could not apply."""
    # The handler lookup is inlined here rather than going through `Fold.apply`:
    # this loop runs once per event per projection and dominates a rebuild.
    handlers = fold.handlers
    for index, (position, event) in enumerate(events):
        handler = handlers.get(type(event))
        try:
            if handler is not None:
                handler(event, position)
            elif type(event) is Undecodable:
                raise ValueError(f"stored event {event.topic} cannot be decoded: {event.error}")
        except Exception as error:
            raise FoldFailed(index, position, error) from error
