"""The fills a candle chart marks, with why each order was placed, folded from the log.

No read model keeps a fill together with its order's reason (the fills table
has no reason; the orders table has no fill position), so the HTML report's
markers come from this fold, fed the same pages as the metrics pass
(`adapters/services/metrics.py`). The dashboard joins `/api/fills` with
`/api/orders` for the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from tradeledger.domain.account import Account
from tradeledger.projections.fold import Recorded


class FillPoint(msgspec.Struct, frozen=True, kw_only=True):
    position: int  # the OrderFilled's log position
    symbol: str
    time: datetime  # the fill's business time: the open of the candle that filled it
    side: str  # buy | sell
    price: Decimal
    quantity: Decimal
    reason: str  # the order's exit reason if it has one, else its reason text


def within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment <= end)


class FillLog:
    """One account's fills with their orders' reasons, folded page by page (as `export_rows.LogRows`)."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.streams: set[UUID | None] = set()  # the account's stream (one, unless several opened the name)
        self.reasons: dict[UUID, str] = {}  # order id -> why it was placed
        self.fills: list[FillPoint] = []

    def apply(self, events: Iterable[Recorded]) -> None:
        for recorded in events:
            handler = self.HANDLERS.get(recorded.type)
            if handler is not None:
                handler(self, recorded)

    def opened(self, recorded: Recorded) -> None:
        if recorded.event.name == self.account:
            self.streams.add(recorded.stream)

    def placed(self, recorded: Recorded) -> None:
        if recorded.stream in self.streams:
            e: Account.OrderPlaced = recorded.event
            self.reasons[e.order_id] = e.exit_reason or e.reason

    def filled(self, recorded: Recorded) -> None:
        if recorded.stream in self.streams:
            e: Account.OrderFilled = recorded.event
            self.fills.append(FillPoint(position=recorded.position, symbol=e.symbol, time=e.timestamp,
                                        side=e.side.value, price=e.price, quantity=e.quantity,
                                        reason=self.reasons.get(e.order_id, "")))

    HANDLERS = {Account.Opened: opened, Account.OrderPlaced: placed, Account.OrderFilled: filled}

    def points(self, start: datetime | None = None, end: datetime | None = None) -> list[FillPoint]:
        """The fills in [start, end] (business time; None leaves that side open), in log order."""
        return [f for f in self.fills if within(f.time, start, end)]
