"""Event topics: the names stored with each event, today's and those written before the package was namespaced.

Release 0.1.0 installed the folders as top-level packages, so its stores hold
topics such as `domain.account:Account.OrderFilled`; today the same class is
`tradeledger.domain.account:Account.OrderFilled`. Both must resolve to the
class (eventsourcing's topic register) and both must match a filter by type.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic, register_topic

from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.checkpoint import Checkpoint
from tradeledger.domain.control import ControlCommand
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.market import Market

AGGREGATES = (Account, Market, AgentRun, Gateway, ControlCommand, Checkpoint)
NAMESPACE = "tradeledger."


def event_classes() -> list[type]:
    return [member for aggregate in AGGREGATES for name, member in vars(aggregate).items()
            if isinstance(member, type) and issubclass(member, aggregate.Event | aggregate.Created)
            and name not in ("Event", "Created")]


def legacy_topic(cls: type) -> str:
    """The topic release 0.1.0 stored for this class."""
    return get_topic(cls).removeprefix(NAMESPACE)


def stored_topics(cls: type) -> list[str]:
    """Every topic under which events of this class may be stored."""
    return [get_topic(cls), legacy_topic(cls)]


def register_legacy_topics() -> None:
    for cls in [*AGGREGATES, *event_classes()]:
        register_topic(legacy_topic(cls), cls)


def event_types() -> dict[str, list[str]]:
    """Short event type name (`OrderFilled`) -> stored topics (`Stopped` has two streams, each two names)."""
    types: dict[str, list[str]] = {}
    for cls in event_classes():
        types.setdefault(cls.__name__, []).extend(stored_topics(cls))
    return types


register_legacy_topics()
