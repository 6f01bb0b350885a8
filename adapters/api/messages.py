"""Log events -> update messages: what `/ws` pushes and `GET /api/updates` returns.

Each message is a pure function of one event and its position, so a message
pushed live and the same message replayed for `?after=N` are identical. Signal
and activity messages are built by the signals and activity folds themselves
(into a throw-away sink), so they say exactly what the read models say.

Client session events are not pushed: every connect would otherwise reach
every other client (quadratic in the number of clients). They are in the
event log, the activity feed and `GET /api/connections`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import msgspec

from tradeledger.adapters.api.follower import Outgoing
from tradeledger.adapters.services.views import (
    ActivityMessage,
    ActivityView,
    AgentMessage,
    AgentUpdate,
    FillMessage,
    FillView,
    MarkMessage,
    MarkUpdate,
    Message,
    OrderMessage,
    OrderUpdate,
    SignalMessage,
    SignalView,
    TradingMessage,
    TradingUpdate,
)
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.market import Market
from tradeledger.projections.activity import DESCRIBE, ActivityFold
from tradeledger.projections.fold import Fold, Recorded
from tradeledger.projections.rows import RowTable
from tradeledger.projections.signals import SignalsFold

TOPICS_OF: dict[type[Message], frozenset[str]] = {
    SignalMessage: frozenset({"signals"}),
    OrderMessage: frozenset({"orders"}),
    FillMessage: frozenset({"fills", "portfolio"}),
    MarkMessage: frozenset({"portfolio"}),
    TradingMessage: frozenset({"portfolio", "health"}),
    AgentMessage: frozenset({"health"}),
    ActivityMessage: frozenset({"activity"}),
}
PUSHED_ACTIVITY = frozenset(DESCRIBE) - {Gateway.ClientConnected, Gateway.ClientDisconnected}

_encoder = msgspec.json.Encoder()


class _LastRow:
    """A sink that keeps the last row a fold put."""

    def __init__(self) -> None:
        self.row: Any = None

    def put(self, _table: RowTable[Any], row: Any) -> None:
        self.row = row

    def delete(self, _table: RowTable[Any], _row: Any) -> None:
        self.row = None


def fold_row(fold: Callable[[_LastRow], Fold], event: object, position: int) -> Any:
    """The row a stateless fold makes of one event (a fresh fold per call: callers run in many threads)."""
    sink = _LastRow()
    fold(sink).apply(event, position)
    return sink.row


MarketNames = Callable[[UUID], tuple[str, str]]


class Renderer:
    """Turns decoded events into messages; safe to share between threads."""

    def __init__(self, market_names: MarketNames) -> None:
        self.market_names = market_names  # a candle event names its market stream, not its symbol
        self.by_type: dict[type, Callable[[Any, int], list[Message]]] = {
            Market.SignalGenerated: self.signal,
            Market.CandleClosed: self.mark,
            Account.OrderPlaced: self.placed,
            Account.OrderCancelled: self.cancelled,
            Account.OrderRejected: self.rejected,
            Account.OrderFilled: self.filled,
            Account.TradingHalted: self.halted,
            Account.TradingResumed: self.resumed,
            AgentRun.Started: self.agent_started,
            AgentRun.Heartbeat: self.heartbeat,
            AgentRun.Stopped: self.agent_stopped,
        }

    def render(self, batch: Sequence[Recorded]) -> list[Message]:
        messages: list[Message] = []
        for recorded in batch:  # events no message needs (session changes) are never decoded
            handler = self.by_type.get(recorded.type)
            if handler is not None:
                messages.extend(handler(recorded.event, recorded.position))
            if recorded.type in PUSHED_ACTIVITY:
                messages.extend(self.activity(recorded.event, recorded.position))
        return messages

    def encode(self, batch: Sequence[Recorded]) -> list[Outgoing]:
        """The follower's render: each message encoded once for every connection."""
        return [Outgoing(m.position, TOPICS_OF[type(m)], _encoder.encode(m).decode()) for m in self.render(batch)]

    def activity(self, e: Any, position: int) -> list[Message]:
        row = fold_row(ActivityFold, e, position)
        return [] if row is None else [ActivityMessage(position=position, at=e.timestamp,
                                                       data=msgspec.convert(row, ActivityView, from_attributes=True))]

    def signal(self, e: Market.SignalGenerated, position: int) -> list[Message]:
        row = fold_row(SignalsFold, e, position)
        return [SignalMessage(position=position, at=e.timestamp,
                              data=msgspec.convert(row, SignalView, from_attributes=True))]

    def mark(self, e: Market.CandleClosed, position: int) -> list[Message]:
        symbol, timeframe = self.market_names(e.originator_id)
        return [MarkMessage(position=position, at=e.timestamp,
                            data=MarkUpdate(symbol=symbol, timeframe=timeframe, price=e.close, open_time=e.open_time,
                                            open=e.open, high=e.high, low=e.low, volume=e.volume))]

    def placed(self, e: Account.OrderPlaced, position: int) -> list[Message]:
        return [OrderMessage(position=position, at=e.timestamp, data=OrderUpdate(
            status="open", order_id=e.order_id, symbol=e.symbol, side=e.side, quantity=e.quantity, reason=e.reason))]

    def cancelled(self, e: Account.OrderCancelled, position: int) -> list[Message]:
        return [OrderMessage(position=position, at=e.timestamp, data=OrderUpdate(
            status="cancelled", order_id=e.order_id, symbol=None, side=None, quantity=None, reason=e.reason))]

    def rejected(self, e: Account.OrderRejected, position: int) -> list[Message]:
        return [OrderMessage(position=position, at=e.timestamp, data=OrderUpdate(
            status="rejected", order_id=None, symbol=e.symbol, side=e.side, quantity=None,
            reason=f"{e.rule}: {e.reason}"))]

    def filled(self, e: Account.OrderFilled, position: int) -> list[Message]:
        return [FillMessage(position=position, at=e.timestamp, data=FillView(
            position=position, order_id=e.order_id, symbol=e.symbol, side=e.side, price=e.price,
            quantity=e.quantity, fee=e.fee, realised_pnl=e.realised_pnl, filled_at=e.timestamp))]

    def halted(self, e: Account.TradingHalted, position: int) -> list[Message]:
        return [TradingMessage(position=position, at=e.timestamp,
                               data=TradingUpdate(halted=True, rule=e.rule, reason=e.reason, by=e.by))]

    def resumed(self, e: Account.TradingResumed, position: int) -> list[Message]:
        return [TradingMessage(position=position, at=e.timestamp,
                               data=TradingUpdate(halted=False, rule=None, reason=e.reason, by=e.by))]

    def agent_started(self, e: AgentRun.Started, position: int) -> list[Message]:
        return [AgentMessage(position=position, at=e.timestamp,
                             data=AgentUpdate(run_id=e.originator_id, status="started", candles_processed=0))]

    def heartbeat(self, e: AgentRun.Heartbeat, position: int) -> list[Message]:
        return [AgentMessage(position=position, at=e.timestamp, data=AgentUpdate(
            run_id=e.originator_id, status="running", candles_processed=e.candles_processed, feed_lag=e.feed_lag))]

    def agent_stopped(self, e: AgentRun.Stopped, position: int) -> list[Message]:
        return [AgentMessage(position=position, at=e.timestamp,
                             data=AgentUpdate(run_id=e.originator_id, status="stopped", reason=e.reason))]
