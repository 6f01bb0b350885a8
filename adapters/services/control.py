"""Operator commands (halt, resume, stop/start entry, force exit/enter) from every channel: appended to their own streams, applied by the agent.

`issue` appends a `ControlCommand.Issued` (a new stream of its own, so it
conflicts with no writer) and then waits, at most `wait` seconds, until the
account has handled it. The running agent, the only writer of the Account,
applies pending commands at its next tick (docs/agent.md). While no agent
runs, `issue` takes the agent's lease for the moment it applies them itself,
so there is still exactly one Account writer at any time. A command still
unhandled at the deadline is `pending`: the agent applies it when it next
ticks (or, if none runs, the next `issue` or agent start does). Forced trades
need the agent's trader: applied without an agent, they are refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal
from uuid import UUID, uuid4

import msgspec

from tradeledger.adapters.lease import Lease
from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.account import Account
from tradeledger.domain.control import EFFECT_FIRST, ControlCommand, apply_command
from tradeledger.domain.errors import DomainError
from tradeledger.domain.ids import account_id

WAIT_SECONDS = 5.0  # how long `issue` waits for the agent to apply a command before answering "pending"
POLL_SECONDS = 0.02  # how often it looks
HANDLED = (Account.CommandApplied, Account.CommandRefused)

Status = Literal["applied", "refused", "pending"]


class AccountMissing(DomainError):
    """No agent has opened the account yet, so there is nothing to halt or resume."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    command_id: UUID
    command: str
    issued: int  # the log position of the command's Issued event
    status: Status
    # applied: the log position of the command's first effect (the TradingHalted / TradingResumed, the
    # EntriesSwitched, a forced order or its rejection); refused: of the CommandRefused
    position: int | None = None
    reason: str = ""  # refused: why


class Inbox:
    """The commands issued to one account after a log position, read in log order, each once."""

    def __init__(self, log: EventLogPort, account: str, *, after: int) -> None:
        self.log = log
        self.account = account
        self.after = after

    def take(self) -> list[tuple[ControlCommand.Issued, int]]:
        head = self.log.head()  # read first: every command at or before it is visible to the scan below
        if head <= self.after:
            return []
        taken = [(r.event, r.position) for r in scan(self.log, self.after, [ControlCommand.Issued])
                 if r.position <= head and r.event.account == self.account]
        self.after = head
        return taken


def apply_pending(log: EventLogPort, account: str) -> None:
    """Apply every pending command to the account in one append. The caller holds the agent lease."""
    aggregate: Account = log.get(account_id(account))
    for issued, position in Inbox(log, account, after=aggregate.last_command_position).take():
        apply_command(aggregate, issued, position)
    log.append(aggregate.collect_events())


def handled(log: EventLogPort, command_id: UUID, after: int) -> tuple[Account.Event, int] | None:
    """The account's CommandApplied or CommandRefused of this command, if recorded after `after`."""
    for recorded in scan(log, after, HANDLED):
        if recorded.event.command_id == command_id:
            return recorded.event, recorded.position
    return None


def issue(log: EventLogPort, lease: Callable[[], Lease], account: str, command: str, *, reason: str, by: str,
          channel: str, at: datetime, symbol: str = "", wait: float = WAIT_SECONDS) -> Outcome:
    """Issue `command` (domain.control COMMANDS; `symbol` for the forced ones) to the account; its outcome,
    or `pending` after `wait` seconds."""
    opened = log.first(Account.Opened)
    if opened is None or opened.event.name != account:
        raise AccountMissing(f"account {account!r} has not been opened yet (no agent has run)")
    issued = ControlCommand.issue(uuid4(), command, account, reason=reason, by=by, channel=channel, at=at,
                                  symbol=symbol)
    position = log.append(issued.collect_events())
    deadline = time.monotonic() + wait
    while (found := handled(log, issued.id, position)) is None:
        if apply_without_agent(log, lease(), account):
            continue
        if time.monotonic() >= deadline:
            return Outcome(command_id=issued.id, command=command, issued=position, status="pending")
        time.sleep(POLL_SECONDS)  # an agent holds the lease: it applies the command at its next tick
    record, at_position = found
    if isinstance(record, Account.CommandRefused):
        return Outcome(command_id=issued.id, command=command, issued=position, position=at_position,
                       status="refused", reason=record.reason)
    # `apply_command` records a halt or resume just before CommandApplied, every other effect just after it,
    # on one aggregate in one append.
    effect = at_position - 1 if command in EFFECT_FIRST else at_position + 1
    return Outcome(command_id=issued.id, command=command, issued=position, position=effect, status="applied")


def apply_without_agent(log: EventLogPort, lease: Lease, account: str) -> bool:
    """While no agent holds the lease, take it and apply the pending commands; False when an agent holds it."""
    if not lease.acquire():
        return False
    try:
        apply_pending(log, account)
    finally:
        lease.release()
    return True


class Control:
    """The operator commands of one account, as every channel (API, Telegram) issues them."""

    def __init__(self, log: EventLogPort, lease: Callable[[], Lease], account: str, *,
                 wait: float = WAIT_SECONDS) -> None:
        self.log = log
        self.lease = lease
        self.account = account
        self.wait = wait

    def issue(self, command: str, *, reason: str, by: str, channel: str, at: datetime, symbol: str = ""
              ) -> Outcome:
        """AccountMissing before any agent opened the account; otherwise the command's outcome."""
        return issue(self.log, self.lease, self.account, command, reason=reason, by=by, channel=channel, at=at,
                     symbol=symbol, wait=self.wait)
