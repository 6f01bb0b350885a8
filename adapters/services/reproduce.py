"""Re-run every recorded decision from the recorded inputs and compare with the log.

Inputs are what the agent did not decide: the candles, the account's opening,
trading halts/resumes that a person commanded (`by` other than "risk"), and
the account's record of each operator command it applied or refused
(`CommandApplied`, `CommandRefused`; stores older than the control streams
hold the halts alone). A stop/start entry or forced trade the account applied
is decided again at its CommandApplied from the issued command (its stream
precedes it in the log), so its orders are compared like the trader's own.
Everything else the agent appended (signals, orders, fills, rejections, risk
halts) must come out of a fresh `Trader` identically, field by field, in the
same stream order. The same replay warms up the agent on restart, so a
restarted agent continues exactly where the killed one stopped; a restart
starts it after the latest state checkpoint (`services.checkpointing`),
`reproduce` from the start, comparing every checkpoint with the state it
recomputed at the position that checkpoint covers.

A divergence names every differing field with both values (`FieldDiff`, nested
fields by dotted path: `basis.sizing.equity`, `feature_values.rsi_14`). By
default the replay stops at the first; `every=True` goes on and counts them by
kind (signal, order, fill, ...). An order's signal is recorded by its market
stream and version (`OrderBasis`), which a re-run reproduces wherever it is
stored, so orders are compared field by field with no exclusions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import msgspec

from tradeledger.adapters.services.checkpointing import Blobs, Checks, Restored
from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.adapters.services.reproduce_data import DataCheck
from tradeledger.domain.account import Account
from tradeledger.domain.control import EFFECT_FIRST, ControlCommand, apply_command, replay_handled
from tradeledger.domain.errors import DomainError
from tradeledger.domain.market import Market
from tradeledger.domain.risk import RISK
from tradeledger.domain.trader import Trader
from tradeledger.projections.fold import Recorded, Undecodable

Event = Any


KINDS = {"SignalGenerated": "signal", "OrderPlaced": "order", "OrderFilled": "fill", "OrderRejected": "rejection",
         "OrderCancelled": "cancellation", "TradingHalted": "halt", "TradingResumed": "halt", "Opened": "account",
         "Listed": "market", "CandleClosed": "candle", "CommandApplied": "command", "CommandRefused": "command",
         "EntriesSwitched": "command", "StateSaved": "checkpoint"}
UNDECODABLE = "undecodable"
LISTED = 100  # divergences kept in a report; every one is counted


class FieldDiff(msgspec.Struct, frozen=True, kw_only=True):
    """One differing field: its dotted path in the event and both values (None: absent on that side)."""

    field: str
    recorded: Any
    reproduced: Any


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    version: int
    position: int | None
    message: str
    kind: str = ""  # signal, order, fill, rejection, halt, ... (KINDS), undecodable
    event: str = ""  # the recorded event's type (the produced one's at the end of the log)
    fields: list[FieldDiff] = []  # when both sides are the same event type

    def __str__(self) -> str:
        where = f"position {self.position}" if self.position is not None else "end of log"
        return f"stream {self.stream} version {self.version} ({where}): {self.message}"


class ReproduceReport(msgspec.Struct, kw_only=True):
    ok: bool
    events: int
    candles: int
    decisions: int
    divergence: Divergence | None  # the first
    divergences: list[Divergence] = []  # the first LISTED, in log order (all of them counted in `counts`)
    counts: dict[str, int] = {}  # divergences by kind
    every: bool = False  # went on past the first divergence
    ignored_settings: dict[str, tuple[str, str]] = {}  # current decision settings that differ: (recorded, now)
    data: DataCheck | None = None  # `--data FILE` (one file): whether it is the recorded input
    data_files: list[DataCheck] = []  # `--data` (any number of files, or a directory): every file's check


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
        self.divergences: list[Divergence] = []
        self.counts: dict[str, int] = {}
        self.commands: dict[UUID, ControlCommand.Issued] = {}  # issued, by id: re-decided where applied
        self.position = 0  # of the last account or market event replayed
        self.commands_read = 0  # every command issued up to here was handled (from a checkpoint)

    @classmethod
    def from_checkpoint(cls, restored: Restored) -> Replay:
        """A replay that continues after the position a checkpoint covers (services.checkpointing)."""
        replay = cls(restored.trader)
        replay.account, replay.position, replay.commands = restored.account, restored.covers, restored.commands
        replay.commands_read = restored.commands_read
        replay.markets = {market.id: market for market in restored.markets}
        return replay

    @property
    def divergence(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None

    def apply(self, event: Event, position: int) -> None:
        self.events += 1
        if isinstance(event, ControlCommand.Issued):
            self.commands[event.originator_id] = event
        if not isinstance(event, Account.Event | Market.Event):
            return  # agent runs and gateways record no decisions
        try:
            produced = self.step(event)
        except DomainError as error:
            self.diverge(event, position, f"the recorded {type(event).__name__} cannot be replayed: {error}")
            return
        for made in produced:
            self.expected.setdefault(made.originator_id, deque()).append(made)
        self.compare(event, position)
        self.position = position

    def check(self, checks: Checks) -> None:
        """Every checkpoint of the state after this position against the state recomputed here."""
        for position, saved, problem in checks.at(self.position, self.trader, self.account, self.markets.values()):
            self.count(Divergence(stream=str(saved.originator_id), version=saved.originator_version,
                                  position=position, kind="checkpoint", event="StateSaved",
                                  message=f"the checkpoint at position {position} is wrong: {problem}"))

    def step(self, event: Event) -> list[Event]:
        """Feed one recorded event to the aggregates (only inputs change them); the events they produced,
        in the order a tick appends them: the markets' (candle, signal), then the account's."""
        self.replay(event)
        return [made for aggregate in [*self.markets.values(), self.account]
                if aggregate is not None and aggregate.pending_events for made in aggregate.collect_events()]

    def replay(self, event: Event) -> None:
        if isinstance(event, Account.Opened):
            self.account = Account.open(event.name, event.quote_currency, event.initial_balance, at=event.timestamp)
        elif isinstance(event, Market.Listed):
            self.markets[event.originator_id] = Market.list(event.symbol, event.timeframe, at=event.timestamp)
        elif isinstance(event, Market.CandleClosed):
            self.tick(event)
        elif isinstance(event, Account.TradingHalted | Account.TradingResumed) and event.by != RISK:
            self.command(event)
        elif isinstance(event, Account.CommandApplied) and event.command not in EFFECT_FIRST:
            assert self.account is not None  # stop/start entry, forced trades: decided again here
            apply_command(self.account, self.commands[event.command_id], event.issued_at, self.trader)
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

    def compare(self, recorded: Event, position: int) -> None:
        queue = self.expected.get(recorded.originator_id)
        produced = queue.popleft() if queue else None
        if produced is None:
            self.diverge(recorded, position, f"recorded {type(recorded).__name__} that the replay did not produce")
        elif type(produced) is not type(recorded):
            self.diverge(recorded, position,
                         f"replay produced {type(produced).__name__}, log has {type(recorded).__name__}")
        elif as_recorded(produced, recorded) != vars(recorded):
            fields = field_diffs(vars(recorded), as_recorded(produced, recorded))
            self.diverge(recorded, position, describe(type(recorded).__name__, fields), fields)
        elif isinstance(recorded, Market.SignalGenerated | Account.OrderPlaced | Account.OrderRejected):
            self.decisions += 1

    def finish(self) -> None:
        for queue in self.expected.values():
            for extra in queue:
                self.count(Divergence(stream=str(extra.originator_id), version=extra.originator_version,
                                      position=None, kind=kind_of(type(extra).__name__), event=type(extra).__name__,
                                      message=f"the replay produced {type(extra).__name__} that is not recorded"))

    def diverge(self, recorded: Event, position: int, message: str, fields: Sequence[FieldDiff] = ()) -> None:
        name = type(recorded).__name__
        self.count(Divergence(stream=str(recorded.originator_id), version=recorded.originator_version,
                              position=position, message=message, kind=kind_of(name), event=name, fields=list(fields)))

    def count(self, divergence: Divergence) -> None:
        self.counts[divergence.kind] = self.counts.get(divergence.kind, 0) + 1
        if len(self.divergences) < LISTED:
            self.divergences.append(divergence)


def kind_of(event_type: str) -> str:
    return KINDS.get(event_type, event_type)


def as_recorded(produced: Event, recorded: Event) -> dict[str, Any]:
    """The produced event's fields as the recorded one can hold them: orders placed and filled before 0.3
    recorded no basis (signal, checks, sizing; the fill's open, slippage, fee rate), so the replay's is not
    compared with it."""
    fields = vars(produced)
    if isinstance(recorded, Account.OrderPlaced) and recorded.exit_reason is None:
        fields = {**fields, "exit_reason": None}  # recorded before exit reasons (domain.exits.recorded_reason)
    if isinstance(recorded, Account.OrderPlaced | Account.OrderFilled) and recorded.basis is None:
        return {**fields, "basis": None}
    return fields


def field_diffs(recorded: Any, reproduced: Any, path: str = "") -> list[FieldDiff]:
    """Every leaf where the two differ, by dotted path; structs, mappings and equal-length sequences are
    compared member by member, anything else (and a member only one side has) as a whole."""
    if recorded == reproduced:
        return []
    if isinstance(recorded, msgspec.Struct) and type(recorded) is type(reproduced):
        recorded, reproduced = msgspec.structs.asdict(recorded), msgspec.structs.asdict(reproduced)
    if isinstance(recorded, dict) and isinstance(reproduced, dict):
        keys = [*recorded, *(k for k in reproduced if k not in recorded)]
        return [d for k in keys
                for d in field_diffs(recorded.get(k), reproduced.get(k), f"{path}.{k}" if path else str(k))]
    if isinstance(recorded, tuple | list) and isinstance(reproduced, tuple | list) and len(recorded) == len(reproduced):
        return [d for i, (a, b) in enumerate(zip(recorded, reproduced)) for d in field_diffs(a, b, f"{path}[{i}]")]
    return [FieldDiff(field=path, recorded=msgspec.to_builtins(recorded), reproduced=msgspec.to_builtins(reproduced))]


def describe(event_type: str, fields: Sequence[FieldDiff]) -> str:
    shown = "; ".join(f"{d.field}: recorded {d.recorded!r}, reproduced {d.reproduced!r}" for d in fields[:3])
    more = f"; and {len(fields) - 3} more" if len(fields) > 3 else ""
    return f"{event_type} differs in {len(fields)} field(s): {shown}{more}"


def decode_problem(recorded: Recorded) -> str | None:
    """Why this stored event cannot be decoded, or None when it can."""
    try:
        event = recorded.event
    except msgspec.ValidationError as error:
        return str(error)
    return event.error if isinstance(event, Undecodable) else None


def replay_log(log: EventLogPort, trader_factory: Callable[[], Trader], *, stop_at_divergence: bool = True,
               start: Restored | None = None, checks: Checks | None = None) -> Replay:
    """The log replayed from the start, or after the position the checkpoint `start` covers; with `checks`,
    each recorded checkpoint compared with the state at the position it covers."""
    replay = Replay(trader_factory()) if start is None else Replay.from_checkpoint(start)
    for recorded in scan(log, replay.position):
        problem = decode_problem(recorded)
        if problem is not None:
            replay.count(Divergence(stream=str(recorded.stream), version=recorded.version or 0,
                                    position=recorded.position, kind=UNDECODABLE,
                                    message=f"the stored event cannot be decoded: {problem}"))
        else:
            replay.apply(recorded.event, recorded.position)
            if checks is not None and replay.position == recorded.position:
                replay.check(checks)
        if stop_at_divergence and replay.divergence is not None:
            return replay
    replay.finish()
    return replay


def reproduce(log: EventLogPort, trader_factory: Callable[[], Trader], *, every: bool = False,
              blobs: Blobs | None = None) -> ReproduceReport:
    """Every recorded decision re-run, and every recorded checkpoint compared with the state recomputed at
    its position (`blobs`: their blobs, checked against their digests); `every`: go on past the first
    divergence and count them all."""
    replay = replay_log(log, trader_factory, stop_at_divergence=not every, checks=Checks(log, blobs))
    return ReproduceReport(ok=replay.divergence is None, events=replay.events, candles=replay.candles,
                           decisions=replay.decisions, divergence=replay.divergence,
                           divergences=replay.divergences, counts=replay.counts, every=every)
