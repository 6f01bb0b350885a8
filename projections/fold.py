"""What every read model shares: the fold, the projection spec, and applying a batch of events.

A fold is pure: it turns domain events (with their log positions)
into rows on a sink and keeps only the working state it needs to continue.
Everything in that working state is also in its rows, so `restore` can pick
up from a database exactly where the last committed batch left off.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple, Self
from uuid import UUID

import msgspec

from tradeledger.projections.rows import RowSource, RowTable, Sink

EventHandler = Callable[[Any, int], None]


class Undecodable(msgspec.Struct, frozen=True):
    """Stands in for a stored event whose topic names no known event class."""

    topic: str
    error: str


class Recorded:
    """One event at its log position: its type, stream and version up front, the event decoded on first use.

    Decoding is most of the cost of reading the log, and some folds need only
    a few events of a batch (the latest signal per market, the newest feed
    lines), so an event no fold reads is never decoded. Once decoded, every
    fold shares the same object.

    Each event has two times: `at`, its business time (the market time it is
    about, the event's `timestamp`), and `recorded_at`, the wall clock when it
    was appended. Both are read without decoding the event.
    """

    __slots__ = ("position", "type", "stream", "version", "_event", "_source", "_decode", "_read_clocks", "_clocks",
                 "_decode_view")

    def __init__(self, position: int, event: Any, recorded_at: datetime | None = None) -> None:
        """An event already in memory (tests, replays of in-memory aggregates); recorded when it happened
        unless `recorded_at` says otherwise."""
        self.position = position
        self.type: type = type(event)
        self.stream: UUID | None = getattr(event, "originator_id", None)
        self.version: int | None = getattr(event, "originator_version", None)
        self._event: Any = event
        self._source: tuple[Any, ...] = (event, recorded_at)
        self._decode: Callable[..., object] | None = None
        self._read_clocks: Callable[..., tuple[datetime, datetime]] = _clocks_of
        self._clocks: tuple[datetime, datetime] | None = None
        self._decode_view: Callable[..., Any] | None = None

    @classmethod
    def lazy(cls, position: int, type_: type, stream: UUID, version: int, source: tuple[Any, ...],
             decode: Callable[..., object], clocks: Callable[..., tuple[datetime, datetime]],
             decode_view: Callable[..., Any] | None = None) -> Recorded:
        """A stored event: `decode(*source)` gives the event when a fold first reads it, `clocks(*source)`
        its (business time, recorded time) from the stored payload alone, `decode_view(view, *source)` the
        fields a view names (`event_view`) from the payload alone."""
        recorded = cls.__new__(cls)
        recorded.position, recorded.type, recorded.stream, recorded.version = position, type_, stream, version
        recorded._event, recorded._source, recorded._decode = None, source, decode
        recorded._read_clocks, recorded._clocks, recorded._decode_view = clocks, None, decode_view
        return recorded

    @property
    def event(self) -> Any:
        if self._decode is not None:
            self._event, self._decode = self._decode(*self._source), None
        return self._event

    def view(self, view: type[Any]) -> Any:
        """The fields of the event that `view` (an `event_view`) names: read from the stored payload alone
        while the event is not decoded (a few fields of a large event cost a fraction of all of them)."""
        if self._decode is None or self._decode_view is None:
            event = self.event
            return view(**{name: getattr(event, name) for name in view.__struct_fields__})
        return self._decode_view(view, *self._source)

    @property
    def at(self) -> datetime:
        """Business time: the market time the event is about."""
        return self.clocks[0]

    @property
    def recorded_at(self) -> datetime:
        """Recorded time: the wall clock when the event was appended."""
        return self.clocks[1]

    @property
    def clocks(self) -> tuple[datetime, datetime]:
        if self._clocks is None:
            self._clocks = self._read_clocks(*self._source)
        return self._clocks

    def __repr__(self) -> str:
        return f"Recorded({self.position}, {self.type.__qualname__})"


@lru_cache(maxsize=None)
def event_view(event_class: type, *names: str) -> type[msgspec.Struct]:
    """A struct of some of an event class's fields (their types and defaults from the class itself, so the
    event stays the one source of its schema) and its stream, `originator_id`; a fold that reads only these
    names it in `Fold.views` and its handler gets this instead of the event."""
    hints = typing.get_type_hints(event_class)
    defaults = {f.name: f.default for f in dataclasses.fields(event_class)}
    fields = [(n, hints[n]) if defaults[n] is dataclasses.MISSING else (n, hints[n], defaults[n]) for n in names]
    return msgspec.defstruct(f"{event_class.__name__}View", [*fields, ("originator_id", UUID | None, None)],
                             kw_only=True)


def _clocks_of(event: Any, recorded_at: datetime | None) -> tuple[datetime, datetime]:
    at: datetime = event.timestamp
    return at, recorded_at or at


class FoldFailed(Exception):
    """A fold raised on the event at log position `position`."""

    def __init__(self, position: int, cause: BaseException) -> None:
        self.position = position
        self.cause = cause
        super().__init__(f"event at position {position}: {type(cause).__name__}: {cause}")


class Fold:
    """Base of every read model's fold: dispatches each event to the handler for its type."""

    # Event types whose handler reads only some fields: it gets this `event_view` of the event instead.
    views: ClassVar[dict[type, type[Any]]] = {}

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.handlers: dict[type, EventHandler] = self.handlers_by_type()

    def handlers_by_type(self) -> dict[type, EventHandler]:
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
    handlers, views = fold.handlers, fold.views
    for recorded in fold.relevant(events):
        handler = handlers.get(recorded.type)
        try:
            if handler is not None:
                view = views.get(recorded.type)
                handler(recorded.event if view is None else recorded.view(view), recorded.position)
            elif recorded.type is Undecodable:
                raise ValueError(f"stored event {recorded.event.topic} cannot be decoded: {recorded.event.error}")
        except Exception as error:
            raise FoldFailed(recorded.position, error) from error
