"""Operator commands on the trading account (halt, resume), shared by every channel.

The agent appends to the same Account stream on every fill, so a command can
lose the optimistic-concurrency race. It then reloads the account and runs the
command again: the decision is made on the newest state, never applied twice
and never lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from eventsourcing.persistence import IntegrityError

from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.domain.account import Account
from tradeledger.domain.errors import DomainError
from tradeledger.domain.ids import account_id

MAX_ATTEMPTS = 50
MANUAL_RULE = "manual"


class AccountMissing(DomainError):
    """No agent has opened the account yet, so there is nothing to halt or resume."""


class ConflictsPersisted(DomainError):
    """Every attempt lost the race; the caller may try again later."""


def halt(store: LedgerStore, account: str, *, reason: str, by: str, at: datetime) -> int:
    """Append TradingHalted(rule="manual"); returns its log position. Raises AlreadyHalted."""
    return _command(
        store, account, lambda a: a.halt_trading(rule=MANUAL_RULE, reason=reason, metrics={}, by=by, at=at)
    )


def resume(store: LedgerStore, account: str, *, reason: str, by: str, at: datetime) -> int:
    """Append TradingResumed; returns its log position. Raises NotHalted."""
    return _command(store, account, lambda a: a.resume_trading(by=by, reason=reason, at=at))


def _command(store: LedgerStore, account: str, apply: Callable[[Account], None]) -> int:
    stream = account_id(account)
    for _attempt in range(MAX_ATTEMPTS):
        if stream not in store.repository:
            raise AccountMissing(f"account {account!r} has not been opened yet (no agent has run)")
        aggregate: Account = store.repository.get(stream)
        apply(aggregate)
        try:
            recordings = store.save(aggregate)
        except IntegrityError:
            continue  # the agent appended first: decide again on the reloaded account
        return recordings[-1].notification.id
    raise ConflictsPersisted(f"account {account!r}: {MAX_ATTEMPTS} write conflicts in a row, try again")
