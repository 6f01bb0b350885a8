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
from typing import Any

from eventsourcing.domain import Aggregate, CanMutateAggregate


# Each event class's fields, filled on first use. A plain dict, not functools.cache: its lookup costs
# half as much, and it runs for every event.
_FIELDS: dict[type, frozenset[str]] = {}


def event_fields(event_class: type) -> frozenset[str]:
    """The fields of an event class, remembered in _FIELDS."""
    fields = _FIELDS[event_class] = frozenset(f.name for f in dataclasses.fields(event_class))
    return fields


class LedgerAggregate(Aggregate):
    def trigger_event(self, event_class: type[CanMutateAggregate[Any]], **kwargs: Any) -> None:
        kwargs["originator_id"] = self._id
        kwargs["originator_version"] = self._version + 1
        fields = _FIELDS.get(event_class) or event_fields(event_class)
        if kwargs.keys() != fields:
            missing = fields - kwargs.keys()
            unknown = kwargs.keys() - fields
            raise TypeError(f"{event_class.__qualname__}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        event = object.__new__(event_class)
        object.__setattr__(event, "__dict__", kwargs)
        # The library's `mutate`, without its checks of the id and version this method has just set.
        event.apply(self)
        self._version = kwargs["originator_version"]
        self._modified_on = kwargs["timestamp"]
        self._pending_events.append(event)
