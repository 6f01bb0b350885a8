"""The books: every journal line the accounts posted, and the trial balance at any cut of the log.

Both are read from the log itself, never from a read model: the journal lines
are those the `Account` events carry (`Opened` posts the opening balance,
`OrderFilled` each fill), and a trial balance is the fold of those lines up to
a cut. The cuts are replay's (`projections.replay`): a log position, or
`as_of`, a business time, which stands for the last account or market event
about a market time <= it. Balances are debit-positive; every journal
balances, so the total of a trial balance is zero at every cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.account import Account
from tradeledger.domain.values import JournalLine
from tradeledger.projections.replay import business_time, last_position

ZERO = Decimal(0)
POSTING_EVENTS = (Account.Opened, Account.OrderFilled)


class Posting(msgspec.Struct, frozen=True, kw_only=True):
    """One journal line as a bookkeeper reads it: exactly one of debit and credit is non-zero."""

    account: str
    debit: Decimal
    credit: Decimal


def posting(line: JournalLine) -> Posting:
    return Posting(account=line.account, debit=max(line.amount, ZERO), credit=max(-line.amount, ZERO))


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A journal line with where it was booked: `book` is the trading account, `account` the ledger account."""

    position: int
    at: datetime  # business time
    event: str
    order_id: UUID | None  # the filled order; None for the opening balance
    book: str
    account: str
    debit: Decimal
    credit: Decimal


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    book: str
    account: str
    debit: Decimal  # the sum of the account's debits up to the cut
    credit: Decimal
    balance: Decimal  # debit - credit


class TrialBalance(msgspec.Struct, frozen=True, kw_only=True):
    position: int  # the cut: every event at a position <= it
    as_of: datetime | None
    balances: list[Balance]
    total: Decimal
    balanced: bool


def journal(log: EventLogPort, *, start: datetime | None = None, end: datetime | None = None,
            account: str | None = None, until: int | None = None) -> list[JournalEntry]:
    """Journal lines in log order, optionally of business times in [start, end], of one ledger account and at
    positions <= `until`."""
    return [entry for entry in entries(log, until)
            if (start is None or entry.at >= start) and (end is None or entry.at <= end)
            and (account is None or entry.account == account)]


def entries(log: EventLogPort, until: int | None = None) -> Iterator[JournalEntry]:
    books: dict[UUID, str] = {}
    for recorded in scan(log, types=POSTING_EVENTS):
        if until is not None and recorded.position > until:
            return
        event = recorded.event
        if isinstance(event, Account.Opened):
            books[event.originator_id] = event.name
        order_id = event.order_id if isinstance(event, Account.OrderFilled) else None
        for line in event.journal:
            p = posting(line)
            yield JournalEntry(position=recorded.position, at=event.timestamp, event=type(event).__name__,
                               order_id=order_id, book=books.get(event.originator_id, str(event.originator_id)),
                               account=p.account, debit=p.debit, credit=p.credit)


def trial_balance(log: EventLogPort, *, position: int | None = None, as_of: datetime | None = None
                  ) -> TrialBalance:
    """Every ledger account's balance at a cut (the head when neither is given) and their total."""
    cut = last_position(log, as_of, business_time) if as_of is not None else position
    cut = log.head() if cut is None else cut
    sums: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for entry in entries(log, cut):
        debit, credit = sums.get((entry.book, entry.account), (ZERO, ZERO))
        sums[(entry.book, entry.account)] = (debit + entry.debit, credit + entry.credit)
    balances = [Balance(book=book, account=name, debit=debit, credit=credit, balance=debit - credit)
                for (book, name), (debit, credit) in sorted(sums.items())]
    total = sum((b.balance for b in balances), ZERO)
    return TrialBalance(position=cut, as_of=as_of, balances=balances, total=total, balanced=total == 0)
