"""Re-run every recorded decision from the recorded inputs and compare with the log.

Inputs are what the agent did not decide: the candles, the account's opening,
trading halts/resumes that a person commanded (`by` other than "risk"), and
the account's record of each operator command it applied or refused
(`CommandApplied`, `CommandRefused`; stores older than the control streams
hold the halts alone).
Everything else the agent appended (signals, orders, fills, rejections, risk
halts) must come out of a fresh `Trader` identically, field by field, in the
same stream order. The same replay warms up the agent on restart, so a
restarted agent continues exactly where the killed one stopped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec

from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.account import Account
from tradeledger.domain.control import replay_handled
from tradeledger.domain.errors import DomainError
from tradeledger.domain.market import Market
from tradeledger.domain.risk import RISK
from tradeledger.domain.trader import Trader
from tradeledger.projections.fold import Recorded, Undecodable

Event = Any


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    version: int
    position: int | None
    message: str

    def __str__(self) -> str:
        where = f"position {self.position}" if self.position is not None else "end of log"
        return f"stream {self.stream} version {self.version} ({where}): {self.message}"


class ReproduceReport(msgspec.Struct, kw_only=True):
    ok: bool
    events: int
    candles: int
    decisions: int
    divergence: Divergence | None


class Replay:
    """Drives a Trader over the recorded log, rebuilding the aggregates in memory."""

    def __init__(self, trader: Trader) -> None:
        self.trader = trader
        self.account: Account | None = None
        self.markets: dict[UUID, Market] = {}
        self.expected: dict[UUID, deque[Event]] = {}
        self.events = 0
        self.candles = 0
        self.decisions = 0
        self.divergence: Divergence | None = None

    def apply(self, event: Event, position: int) -> None:
        self.events += 1
        if not isinstance(event, Account.Event | Market.Event):
            return  # agent runs and gateways record no decisions
        try:
            self.replay(event)
        except DomainError as error:
            self.diverge(event, position, f"the recorded {type(event).__name__} cannot be replayed: {error}")
            return
        self.collect()
        self.compare(event, position)

    def replay(self, event: Event) -> None:
        if isinstance(event, Account.Opened):
            self.account = Account.open(event.name, event.quote_currency, event.initial_balance, at=event.timestamp)
        elif isinstance(event, Market.Listed):
            self.markets[event.originator_id] = Market.list(event.symbol, event.timeframe, at=event.timestamp)
        elif isinstance(event, Market.CandleClosed):
            self.tick(event)
        elif isinstance(event, Account.TradingHalted | Account.TradingResumed) and event.by != RISK:
            self.command(event)
        elif isinstance(event, Account.CommandApplied | Account.CommandRefused):
            assert self.account is not None
            replay_handled(self.account, event)

    def tick(self, event: Market.CandleClosed) -> None:
        market = self.markets[event.originator_id]
        candle = market.candle_at(event)
        if self.account is None:
            raise LookupError("a candle was recorded before the account was opened")
        self.trader.trade(candle, self.trader.observe(candle), market, self.account)
        self.candles += 1

    def command(self, event: Account.TradingHalted | Account.TradingResumed) -> None:
        assert self.account is not None
        if isinstance(event, Account.TradingHalted):
            self.account.halt_trading(rule=event.rule, reason=event.reason, metrics=event.metrics, by=event.by,
                                      at=event.timestamp)
        else:
            self.account.resume_trading(by=event.by, reason=event.reason, at=event.timestamp)

    def collect(self) -> None:
        for aggregate in [self.account, *self.markets.values()]:
            if aggregate is not None and aggregate.pending_events:
                for event in aggregate.collect_events():
                    self.expected.setdefault(event.originator_id, deque()).append(event)

    def compare(self, recorded: Event, position: int) -> None:
        if self.divergence is not None:
            return
        queue = self.expected.get(recorded.originator_id)
        produced = queue.popleft() if queue else None
        if produced is None:
            self.diverge(recorded, position, f"recorded {type(recorded).__name__} that the replay did not produce")
        elif type(produced) is not type(recorded) or vars(produced) != vars(recorded):
            self.diverge(recorded, position, describe(produced, recorded))
        elif isinstance(recorded, Market.SignalGenerated | Account.OrderPlaced | Account.OrderRejected):
            self.decisions += 1

    def finish(self) -> None:
        for queue in self.expected.values():
            if queue and self.divergence is None:
                extra = queue[0]
                self.divergence = Divergence(stream=str(extra.originator_id), version=extra.originator_version,
                                             position=None,
                                             message=f"the replay produced {type(extra).__name__} that is not recorded")

    def diverge(self, recorded: Event, position: int, message: str) -> None:
        self.divergence = Divergence(stream=str(recorded.originator_id), version=recorded.originator_version,
                                     position=position, message=message)


def describe(produced: Event, recorded: Event) -> str:
    if type(produced) is not type(recorded):
        return f"replay produced {type(produced).__name__}, log has {type(recorded).__name__}"
    fields = [k for k in vars(recorded) if vars(produced).get(k) != vars(recorded)[k]]
    first = fields[0]
    return (f"{type(recorded).__name__}.{first} differs: replay {vars(produced).get(first)!r}, "
            f"log {vars(recorded)[first]!r}" + (f" (and {len(fields) - 1} more fields)" if len(fields) > 1 else ""))


def decode_problem(recorded: Recorded) -> str | None:
    """Why this stored event cannot be decoded, or None when it can."""
    try:
        event = recorded.event
    except msgspec.ValidationError as error:
        return str(error)
    return event.error if isinstance(event, Undecodable) else None


def replay_log(log: EventLogPort, trader_factory: Callable[[], Trader], *, stop_at_divergence: bool = True
               ) -> Replay:
    replay = Replay(trader_factory())
    for recorded in scan(log):
        problem = decode_problem(recorded)
        if problem is not None:
            replay.divergence = replay.divergence or Divergence(
                stream=str(recorded.stream), version=recorded.version or 0, position=recorded.position,
                message=f"the stored event cannot be decoded: {problem}")
            continue
        replay.apply(recorded.event, recorded.position)
        if stop_at_divergence and replay.divergence is not None:
            return replay
    replay.finish()
    return replay


def reproduce(log: EventLogPort, trader_factory: Callable[[], Trader]) -> ReproduceReport:
    replay = replay_log(log, trader_factory)
    return ReproduceReport(ok=replay.divergence is None, events=replay.events, candles=replay.candles,
                           decisions=replay.decisions, divergence=replay.divergence)
