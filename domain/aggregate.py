"""The base of our aggregates: the library's Aggregate with a leaner `trigger_event`.

The library builds each event through its frozen-dataclass `__init__`, which
sets every field with `object.__setattr__`; on the agent's hot path that was
the largest single cost per event. Here the event's fields are checked
against the class's fields (so a missing or unknown field is still a
TypeError) and installed in one step; `apply` runs as before, and the version
and modification time are set as the library's `mutate` sets them.
Every event must be given its `timestamp`: the domain has no clock.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

from eventsourcing.domain import Aggregate, CanMutateAggregate


@cache
def event_fields(event_class: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(event_class))


class LedgerAggregate(Aggregate):
    def trigger_event(self, event_class: type[CanMutateAggregate[Any]], **kwargs: Any) -> None:
        kwargs["originator_id"] = self._id
        kwargs["originator_version"] = self._version + 1
        if kwargs.keys() != event_fields(event_class):
            missing = event_fields(event_class) - kwargs.keys()
            unknown = kwargs.keys() - event_fields(event_class)
            raise TypeError(f"{event_class.__qualname__}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        event = object.__new__(event_class)
        object.__setattr__(event, "__dict__", kwargs)
        # The library's `mutate`, without its checks of the id and version this method has just set.
        event.apply(self)
        self._version = kwargs["originator_version"]
        self._modified_on = kwargs["timestamp"]
        self._pending_events.append(event)
