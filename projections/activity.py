"""The activity feed: one readable line per recent event, for the dashboard.

Only the last KEEP_LAST rows are kept (by log position). Candles and agent
heartbeats are left out: they arrive every tick and would push everything
else out of the feed, and each candle's signal line already names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.market import Market
from tradeledger.projections.fold import Fold, EventHandler, Projection, Recorded, Undecodable
from tradeledger.projections.rows import RowTable

KEEP_LAST = 1000


class ActivityRow(msgspec.Struct, kw_only=True):
    position: int
    at: datetime
    type: str
    stream: str
    text: str


ACTIVITY = RowTable.of(ActivityRow, "activity_feed", primary_key=["position"], keep_last=KEEP_LAST)


def _short(order_id: object) -> str:
    return str(order_id)[:8]


# One line per event type; `Any` because each describes a different event class.
DESCRIBE: dict[type, Callable[[Any], str]] = {
    Account.Opened: lambda e: f"account {e.name} opened with {e.initial_balance} {e.quote_currency}",
    Account.OrderPlaced: lambda e: f"order {_short(e.order_id)}: {e.side.value} {e.quantity} {e.symbol} "
                                   f"({e.order_type.value}) - {e.reason or 'no reason given'}",
    Account.OrderRejected: lambda e: f"{e.side.value} {e.symbol} rejected by {e.rule}: {e.reason}",
    Account.OrderFilled: lambda e: f"order {_short(e.order_id)} filled: {e.side.value} {e.quantity} {e.symbol} "
                                   f"@ {e.price}, fee {e.fee}",
    Account.OrderCancelled: lambda e: f"order {_short(e.order_id)} cancelled: {e.reason}",
    Account.TradingHalted: lambda e: f"trading halted by {e.rule} ({e.by}): {e.reason}",
    Account.TradingResumed: lambda e: f"trading resumed by {e.by}: {e.reason}",
    Account.EntriesSwitched: lambda e: f"entries {'stopped' if e.stopped else 'started'} by {e.by}: {e.reason}",
    Market.Listed: lambda e: f"market {e.symbol} {e.timeframe} listed",
    Market.SignalGenerated: lambda e: f"{e.symbol} {e.timeframe} {e.candle_time:%Y-%m-%d %H:%M}: "
                                      f"{e.prediction.value} ({e.confidence:.2f})"
                                      f"{', actionable' if e.is_actionable else ''}",
    AgentRun.Started: lambda e: f"agent {e.version} started on {e.host} (pid {e.pid}), model {e.model}",
    AgentRun.Stopped: lambda e: f"agent stopped ({'clean' if e.clean else 'not clean'}): {e.reason}",
    Gateway.Started: lambda e: f"{e.kind} gateway started on {e.host} (pid {e.pid})",
    Gateway.ClientConnected: lambda e: f"client {e.session_id} connected via {e.channel} from {e.peer}",
    Gateway.ClientDisconnected: lambda e: f"client {e.session_id} disconnected after {e.duration:.0f}s: {e.reason}",
    Gateway.CommandRefused: lambda e: f"{e.command} from {e.peer} via {e.channel} refused: {e.reason}",
    Gateway.Stopped: lambda e: f"gateway stopped: {e.reason}",
}


class ActivityFold(Fold):
    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {event_type: self.describe for event_type in DESCRIBE}

    def relevant(self, events: Sequence[Recorded]) -> Sequence[Recorded]:
        # Only the newest KEEP_LAST rows outlive a batch, so the text of older events in it would be
        # thrown away unread: a rebuild renders ~1000 lines per batch instead of one per event.
        # An undecodable event is never skipped: the suffix starts at it.
        start, kept = len(events), 0
        while start > 0 and kept < KEEP_LAST:
            start -= 1
            kept += events[start].type in DESCRIBE
        undecodable = next((i for i in range(start) if events[i].type is Undecodable), start)
        return events[undecodable:]

    def describe(self, e: Any, position: int) -> None:
        event_type = type(e)
        self.sink.put(ACTIVITY, ActivityRow(position=position, at=e.timestamp, type=event_type.__qualname__,
                                            stream=str(e.originator_id), text=DESCRIBE[event_type](e)))


ACTIVITY_PROJECTION = Projection("activity", (ACTIVITY,), ActivityFold)
