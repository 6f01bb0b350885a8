"""`reproduce --with KEY=VALUE`: the recorded inputs re-run under other decision settings, beside the recorded history.

The recorded candles, the account's opening and the operator's commands are fed
to a fresh `Trader` built with the recorded decision settings, the given keys
overridden (only decision settings: `domain.decisions.DecisionSettings`); what it
decides is collected into an in-memory log (nothing is written to the audited
store) and folded by the portfolio projection, like the recorded log, so both
outcomes are figured the same way (`backtest.summarise`). An operator command
that cannot apply to the what-if account (a resume of a halt that never
happened) is skipped and listed.

The first changed decision is found stream by stream (a market's signals, the
account's orders, fills, rejections and risk halts), as `reproduce` compares
them but without each decision's `basis` (the limits it was checked against and
its sizing inputs record the settings, so they differ on every order of a
what-if; the decision is what was done): the earliest business time at which
the two histories part. Its differing fields are all listed, `basis` included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from tradeledger.adapters.services.backtest import BacktestResult, summarise
from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.adapters.services.reproduce import FieldDiff, Replay, as_recorded, decode_problem, field_diffs
from tradeledger.adapters.services.trading import decision_settings, recorded_decisions, recorded_settings
from tradeledger.domain.account import Account
from tradeledger.domain.control import ControlCommand
from tradeledger.domain.decisions import UNSET, DecisionSettings
from tradeledger.domain.errors import DomainError
from tradeledger.domain.market import Market
from tradeledger.domain.risk import RISK
from tradeledger.domain.trader import Trader
from tradeledger.projections.fold import Recorded
from tradeledger.settings import Settings, SettingsError
from tradeledger.settings.loader import RULES, validated

Event = Any
NOTHING = "no decision"
DECISIONS = (Market.SignalGenerated, Account.OrderPlaced, Account.OrderRejected, Account.OrderFilled,
             Account.OrderCancelled)


class WhatIfError(ValueError):
    """A what-if that cannot be run: a bad override or a store with nothing to re-run (one line, exit 2)."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    final_equity: Decimal
    return_percent: Decimal
    max_drawdown_percent: Decimal
    trades: int
    gross_pnl: Decimal  # closed positions' result before fees
    fees: Decimal
    net_pnl: Decimal  # gross_pnl - fees


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """The first decision that differs: when, where the recorded one is (None: none was recorded then), both."""

    at: datetime  # its business time (the candle's open; a fill's: the open it filled at)
    position: int | None
    recorded: str
    what_if: str
    fields: list[FieldDiff] = []  # when both are the same kind of event


class WhatIfReport(msgspec.Struct, frozen=True, kw_only=True):
    settings: dict[str, tuple[str, str]]  # each overridden key: (recorded, what-if)
    candles: int
    quote_currency: str
    recorded: Outcome
    what_if: Outcome
    changed: Change | None  # None: every decision is the recorded one
    skipped: list[str]  # operator commands that did not apply to the what-if account


def overridden(recorded: DecisionSettings, overrides: Mapping[str, str]) -> DecisionSettings:
    """The recorded decision settings with `overrides` (dotted key -> text) validated by the settings model."""
    fields = {f.encode_name: f.name for f in msgspec.structs.fields(DecisionSettings) if f.encode_name in RULES}
    try:
        values = validated(overrides)  # an unknown key or a bad value, named as the settings loader names it
    except SettingsError as error:
        raise WhatIfError("; ".join(issue.describe() for issue in error.errors)) from None
    for key in values:
        if key not in fields:
            raise WhatIfError(f"{key}: not a decision setting, so it cannot change a decision; "
                              f"--with takes {', '.join(fields)}")
    changed = msgspec.structs.replace(recorded, **{fields[key]: value for key, value in values.items()})
    if changed.predictor_slow <= changed.predictor_fast:
        raise WhatIfError(f"predictor.slow: expected an integer > predictor.fast ({changed.predictor_fast}), "
                          f"got {changed.predictor_slow}")
    return changed


def ignored_settings(log: EventLogPort, settings: Settings) -> dict[str, tuple[str, str]]:
    """The decision settings that differ now from the store's recorded ones (which reproduce uses): key ->
    (recorded, now)."""
    recorded = recorded_decisions(log)
    return {} if recorded is None else decision_settings(settings).changes_from(recorded)


def what_if(log: EventLogPort, settings: Settings, overrides: Mapping[str, str],
            trader_for: Callable[[Settings], Callable[[], Trader]],
            progress: Callable[[int], None] | None = None) -> WhatIfReport:
    recorded = recorded_decisions(log)
    if recorded is None:
        raise WhatIfError("this store has no agent run: there are no recorded decisions to re-run")
    changed = overridden(recorded, overrides)
    base = msgspec.to_builtins(recorded_settings(log, settings))
    run = WhatIfRun(trader_for(msgspec.convert(changed.applied_to(base), Settings, strict=False))())
    for event in scan(log):
        if decode_problem(event) is None:
            run.apply(event.event, event.position)
            if progress is not None and event.type is Market.CandleClosed:
                progress(run.replay.candles)
    account = run.replay.account
    if account is None:
        raise WhatIfError("this store records no account: there are no decisions to re-run")
    before, after = recorded.recorded(), changed.recorded()
    return WhatIfReport(
        settings={key: (before.get(key, UNSET), after.get(key, UNSET)) for key in overrides}, candles=run.replay.candles,
        quote_currency=account.quote_currency, recorded=outcome(summarise(log, account.name, run.replay.candles, 0)),
        what_if=outcome(summarise(MemoryLog(run.events), account.name, run.replay.candles, 0)),
        changed=first_change(run.recorded, by_stream((None, e) for e in run.events if is_decision(e))),
        skipped=run.skipped)


class WhatIfRun:
    """The recorded inputs through a Replay's aggregates; what they produce is the what-if history."""

    def __init__(self, trader: Trader) -> None:
        self.replay = Replay(trader)
        self.events: list[Event] = []
        self.recorded: dict[UUID, list[tuple[int | None, Event]]] = {}  # the recorded decisions, by stream
        self.skipped: list[str] = []

    def apply(self, event: Event, position: int) -> None:
        if is_decision(event):
            self.recorded.setdefault(event.originator_id, []).append((position, event))
        elif isinstance(event, ControlCommand.Issued):  # a forced trade is decided again where it was applied
            self.replay.commands[event.originator_id] = event
        elif isinstance(event, Account.Event | Market.Event):
            try:
                self.events += self.replay.step(event)
            except DomainError as error:
                self.skipped.append(f"position {position}: {type(event).__name__} ({error})")


def is_decision(event: Event) -> bool:
    return isinstance(event, DECISIONS) or (isinstance(event, Account.TradingHalted | Account.TradingResumed)
                                            and event.by == RISK)


def by_stream(decisions: Iterator[tuple[int | None, Event]]) -> dict[UUID, list[tuple[int | None, Event]]]:
    streams: dict[UUID, list[tuple[int | None, Event]]] = {}
    for position, event in decisions:
        streams.setdefault(event.originator_id, []).append((position, event))
    return streams


def first_change(recorded: Mapping[UUID, Sequence[tuple[int | None, Event]]],
                 what_if: Mapping[UUID, Sequence[tuple[int | None, Event]]]) -> Change | None:
    changes = [c for stream in {*recorded, *what_if}
               if (c := stream_change(recorded.get(stream, ()), what_if.get(stream, ()))) is not None]
    return min(changes, key=lambda c: (c.at, c.position is None, c.position or 0), default=None)


def stream_change(recorded: Sequence[tuple[int | None, Event]], what_if: Sequence[tuple[int | None, Event]]
                  ) -> Change | None:
    for index in range(max(len(recorded), len(what_if))):
        position, was = recorded[index] if index < len(recorded) else (None, None)
        now = what_if[index][1] if index < len(what_if) else None
        if was is not None and now is not None and type(was) is type(now):
            if decided(as_recorded(now, was)) == decided(vars(was)):
                continue
            fields = field_diffs(vars(was), as_recorded(now, was))
            return Change(at=was.timestamp, position=position, recorded=summary(was), what_if=summary(now),
                          fields=fields)
        # The side that decided earlier decided alone at that time (the other decided nothing then).
        if now is None or (was is not None and was.timestamp < now.timestamp):
            return Change(at=was.timestamp, position=position, recorded=summary(was), what_if=NOTHING)
        if was is None or now.timestamp < was.timestamp:
            return Change(at=now.timestamp, position=None, recorded=NOTHING, what_if=summary(now))
        return Change(at=was.timestamp, position=position, recorded=summary(was), what_if=summary(now))
    return None


def decided(fields: dict[str, Any]) -> dict[str, Any]:
    """What a decision did, without the facts it was taken on (`basis`: the limits checked, the sizing inputs),
    which change with the settings even when the decision does not."""
    return {name: value for name, value in fields.items() if name != "basis"}


def summary(event: Event) -> str:
    """One decision in a few words."""
    if isinstance(event, Market.SignalGenerated):
        return f"signal {event.prediction.value} {event.symbol} (confidence {event.confidence:.3f})"
    if isinstance(event, Account.OrderPlaced):
        return f"order {event.side.value} {event.quantity.normalize():f} {event.symbol} ({event.reason})"
    if isinstance(event, Account.OrderRejected):
        return f"rejected {event.side.value} {event.symbol} by {event.rule}"
    if isinstance(event, Account.OrderFilled):
        return (f"fill {event.side.value} {event.quantity.normalize():f} {event.symbol} "
                f"at {event.price.normalize():f}, "
                f"fee {event.fee.normalize():f}")
    if isinstance(event, Account.OrderCancelled):
        return f"cancelled order {event.order_id} ({event.reason})"
    if isinstance(event, Account.TradingHalted):
        return f"trading halted by {event.rule}"
    return f"{type(event).__name__}"


def outcome(result: BacktestResult) -> Outcome:
    return Outcome(final_equity=result.final_equity, return_percent=result.return_percent,
                   max_drawdown_percent=result.max_drawdown_percent, trades=result.trades,
                   gross_pnl=result.gross_pnl, fees=result.fees, net_pnl=result.net_pnl)


class MemoryLog:
    """The what-if history as a log the projections can fold (positions from 1, in the order produced)."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.recorded = [Recorded(position, event) for position, event in enumerate(events, start=1)]

    def read(self, after: int, limit: int) -> Sequence[Recorded]:
        return self.recorded[after:after + limit]

    def head(self) -> int:
        return len(self.recorded)

    def watch(self, wake: Callable[[], None]) -> AbstractContextManager[None]:
        return nullcontext()
