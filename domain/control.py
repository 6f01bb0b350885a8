"""Operator commands (halt, resume): each one a small stream of its own, written once by whoever issues it.

Only the trading agent writes the Account. A command is therefore a request:
the agent (or, while no agent runs, the control service holding the agent's
lease) applies the pending commands to the account in log order and records,
in the same append, which command took effect (`Account.CommandApplied`) or
why it could not (`Account.CommandRefused`). Either way it is never pending
again, and a command stream can never conflict with any other writer.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from tradeledger.domain import errors
from tradeledger.domain.account import Account
from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.values import require_utc

HALT = "halt"
RESUME = "resume"
COMMANDS = (HALT, RESUME)
MANUAL_RULE = "manual"  # the rule a commanded halt is recorded under


class ControlCommand(LedgerAggregate):
    class Issued(Aggregate.Created):
        command: str
        account: str
        reason: str
        by: str
        channel: str

    def __init__(self, command: str, account: str, reason: str, by: str, channel: str) -> None:
        self.command = command
        self.account = account
        self.reason = reason
        self.by = by
        self.channel = channel

    @classmethod
    def issue(cls, command_id: UUID, command: str, account: str, *, reason: str, by: str, channel: str,
              at: datetime) -> ControlCommand:
        """`command_id`: a fresh random id (the domain has no randomness of its own)."""
        if command not in COMMANDS:
            raise errors.InvalidValue("command", command, f"expected one of {', '.join(COMMANDS)}")
        return cls._create(cls.Issued, id=command_id, command=command, account=account, reason=reason, by=by,
                           channel=channel, timestamp=require_utc("at", at))


def apply_command(account: Account, issued: ControlCommand.Issued, position: int) -> bool:
    """Apply the command issued at log `position` to the account; False when refused (recorded as such).

    The halt or resume takes the command's issue time as its business time, as a halt written straight to
    the account did before commands had streams of their own.
    """
    fields = {"command_id": issued.originator_id, "command": issued.command, "issued_at": position,
              "timestamp": issued.timestamp}
    try:
        if issued.command == HALT:
            account.halt_trading(rule=MANUAL_RULE, reason=issued.reason, metrics={}, by=issued.by,
                                 at=issued.timestamp)
        else:
            account.resume_trading(by=issued.by, reason=issued.reason, at=issued.timestamp)
    except (errors.AlreadyHalted, errors.NotHalted) as error:
        account.trigger_event(Account.CommandRefused, reason=str(error), **fields)
        return False
    account.trigger_event(Account.CommandApplied, **fields)
    return True


def replay_handled(account: Account, recorded: Account.CommandApplied | Account.CommandRefused) -> None:
    """Record again, on a replayed account, that a command was handled (an input, like a manual halt)."""
    fields = {k: v for k, v in vars(recorded).items() if k not in ("originator_id", "originator_version")}
    account.trigger_event(type(recorded), **fields)
