"""Operator commands (halt, resume, stop/start entry, force exit/enter): each one a small stream of its own,
written once by whoever issues it.

Only the trading agent writes the Account. A command is therefore a request:
the agent (or, while no agent runs, the control service holding the agent's
lease) applies the pending commands to the account in log order and records,
in the same append, which command took effect (`Account.CommandApplied`) or
why it could not (`Account.CommandRefused`). Either way it is never pending
again, and a command stream can never conflict with any other writer.

A halt or resume is recorded before its CommandApplied (as before the other
commands existed); every other command's effect right after it, so a replay
that meets the CommandApplied re-decides the command there and compares what
follows. Forced trades are the agent's decisions, with its trader's sizing and
market rules: placed when applied, on the symbol's last closed candle, they
fill at the next candle's open like any order; while no agent runs they are
refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate

from tradeledger.domain import errors
from tradeledger.domain.account import Account
from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.exits import FORCE_EXIT
from tradeledger.domain.trader import Trader, signal_ref
from tradeledger.domain.values import Side, require_utc

HALT = "halt"
RESUME = "resume"
STOP_ENTRY = "stop_entry"
START_ENTRY = "start_entry"
FORCE_ENTER = "force_enter"
COMMANDS = (HALT, RESUME, STOP_ENTRY, START_ENTRY, FORCE_EXIT, FORCE_ENTER)
EFFECT_FIRST = (HALT, RESUME)  # recorded before their CommandApplied; the others' effects right after it
TARGETED = (FORCE_EXIT, FORCE_ENTER)  # need a symbol (force_exit also takes ALL)
ALL = "all"
MANUAL_RULE = "manual"  # the rule a commanded halt is recorded under


class Refused(errors.DomainError):
    """The command cannot take effect now: nothing to exit, already in a position, no agent running..."""


class ControlCommand(LedgerAggregate):
    class Issued(Aggregate.Created):
        command: str
        account: str
        reason: str
        by: str
        channel: str
        symbol: str = ""  # force_exit: a symbol or "all"; force_enter: a symbol; "" for the others

    def __init__(self, command: str, account: str, reason: str, by: str, channel: str, symbol: str = "") -> None:
        self.command = command
        self.account = account
        self.reason = reason
        self.by = by
        self.channel = channel
        self.symbol = symbol

    @classmethod
    def issue(cls, command_id: UUID, command: str, account: str, *, reason: str, by: str, channel: str,
              at: datetime, symbol: str = "") -> ControlCommand:
        """`command_id`: a fresh random id (the domain has no randomness of its own)."""
        if command not in COMMANDS:
            raise errors.InvalidValue("command", command, f"expected one of {', '.join(COMMANDS)}")
        if (command in TARGETED) != bool(symbol) or (symbol == ALL and command != FORCE_EXIT):
            wanted = "no symbol" if command not in TARGETED else (
                "a symbol or 'all'" if command == FORCE_EXIT else "a symbol")
            raise errors.InvalidValue("symbol", symbol, f"{command} takes {wanted}")
        return cls._create(cls.Issued, id=command_id, command=command, account=account, reason=reason, by=by,
                           channel=channel, symbol=symbol, timestamp=require_utc("at", at))


def apply_command(account: Account, issued: ControlCommand.Issued, position: int,
                  trader: Trader | None = None) -> bool:
    """Apply the command issued at log `position` to the account; False when refused (recorded as such).

    `trader`: the agent's (None while no agent runs: forced trades are refused). Halts, resumes and the
    entry switch take the command's issue time as their business time, as a halt written straight to the
    account did before commands had streams of their own; forced orders the close they are placed on.
    """
    fields = {"command_id": issued.originator_id, "command": issued.command, "issued_at": position,
              "timestamp": issued.timestamp}
    try:
        effect = planned(account, issued, trader)
        if issued.command in EFFECT_FIRST:
            effect()
    except errors.DomainError as error:
        account.trigger_event(Account.CommandRefused, reason=str(error), **fields)
        return False
    account.trigger_event(Account.CommandApplied, **fields)
    if issued.command not in EFFECT_FIRST:
        effect()
    return True


def planned(account: Account, issued: ControlCommand.Issued, trader: Trader | None) -> Callable[[], None]:
    """What the command does, once its checks pass (Refused or another DomainError when they do not)."""
    by, reason, at = issued.by, issued.reason, issued.timestamp
    if issued.command == HALT:
        return lambda: account.halt_trading(rule=MANUAL_RULE, reason=reason, metrics={}, by=by, at=at)
    if issued.command == RESUME:
        return lambda: account.resume_trading(by=by, reason=reason, at=at)
    if issued.command in (STOP_ENTRY, START_ENTRY):
        stopped = issued.command == STOP_ENTRY
        if stopped == account.entries_stopped:
            raise errors.EntriesUnchanged(f"entries are already {'stopped' if stopped else 'allowed'}")
        return lambda: account.switch_entries(stopped=stopped, by=by, reason=reason, at=at)
    if trader is None:
        raise Refused("no agent is running: a forced trade is placed by the agent, at its next candle")
    if issued.command == FORCE_EXIT:
        return planned_exit(account, issued, trader)
    return planned_entry(account, issued, trader)


def asked(issued: ControlCommand.Issued) -> str:
    """A forced order's reason text: the command, who asked through which channel, and why."""
    why = f": {issued.reason}" if issued.reason else ""
    return f"{issued.command} by {issued.by} via {issued.channel}{why}"


def planned_exit(account: Account, issued: ControlCommand.Issued, trader: Trader) -> Callable[[], None]:
    """Sell what is held at the next open, in the named symbol or all: pending entries are dropped, and a
    resting limit exit gives way (it might never fill, which is what forcing the exit is about); a market
    sell already pending is left to fill."""
    named = [issued.symbol] if issued.symbol != ALL else sorted({*account.positions,
                                                                  *(o.symbol for o in account.orders.values())})
    dropped = [o for o in account.orders.values()
               if o.symbol in named and (o.side is Side.BUY or o.limit_price is not None)]
    resting: dict[str, Decimal] = {}
    for order in (o for o in dropped if o.side is Side.SELL):
        resting[order.symbol] = resting.get(order.symbol, Decimal(0)) + order.quantity
    sells = [(s, room) for s in named if (room := account.committed_sell_room(s) + resting.get(s, 0)) > 0]
    if not dropped and not sells:
        where = "" if issued.symbol == ALL else f" in {issued.symbol}"
        raise Refused(f"nothing to exit: no open position{where} that is not already being sold")

    def effect() -> None:
        for order in dropped:
            what = "the pending entry is" if order.side is Side.BUY else "the resting limit exit is"
            account.cancel_order(order.order_id, reason=f"{asked(issued)}: {what} dropped",
                                 at=trader.last_candles[order.symbol].close_time)
        for symbol, room in sells:
            candle = trader.last_candles[symbol]
            if not trader.refused(symbol, Side.SELL, room, candle.close, candle.close_time, account):
                account.place_order(symbol, Side.SELL, room, at=candle.close_time, signal_ref=signal_ref(candle),
                                    reason=asked(issued), basis=trader.basis(), exit_reason=FORCE_EXIT)
    return effect


def planned_entry(account: Account, issued: ControlCommand.Issued, trader: Trader) -> Callable[[], None]:
    """Buy with the trader's sizing and rules, as an up signal on the symbol's last candle would."""
    symbol = issued.symbol
    candle = trader.last_candles.get(symbol)
    if candle is None:
        raise Refused(f"unknown symbol {symbol}: the agent has traded no candle of it")
    if account.is_halted:
        raise Refused(f"trading is halted by {account.halted_by_rule}: no new entries")
    if account.entries_stopped:
        raise Refused("entries are stopped (stop_entry): no new entries")
    if account.position(symbol).quantity > 0 or any(o.symbol == symbol for o in account.orders.values()):
        raise Refused(f"already in a position in {symbol} (or an order of it is pending)")
    return lambda: trader.enter(candle, account, signal_ref(candle), reason=asked(issued))


def replay_handled(account: Account, recorded: Account.CommandApplied | Account.CommandRefused) -> None:
    """Record again, on a replayed account, that a command was handled (an input, like a manual halt)."""
    fields = {k: v for k, v in vars(recorded).items() if k not in ("originator_id", "originator_version")}
    account.trigger_event(type(recorded), **fields)
