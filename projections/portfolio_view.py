"""Reading the portfolio rows: one account's portfolio, and the auditor's identities over every account."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from tradeledger.projections.portfolio_rows import (
    ACCOUNTS,
    DAILY_PNL,
    ORDERS,
    POSITIONS,
    TRADES,
    AccountRow,
    DailyPnlRow,
    OrderRow,
    PositionRow,
    TradeRow,
)
from tradeledger.projections.rows import RowMismatch, RowSource

ZERO = Decimal(0)


class AccountPortfolio(msgspec.Struct, kw_only=True):
    """One account's portfolio as the CLI and API show it."""

    account: AccountRow
    positions: list[PositionRow]
    open_orders: list[OrderRow]
    trades: list[TradeRow]
    daily_pnl: list[DailyPnlRow]


def account_portfolio(rows: RowSource[Any], account: str) -> AccountPortfolio | None:
    found = [a for a in rows(ACCOUNTS) if a.account == account]
    if not found:
        return None
    return AccountPortfolio(
        account=found[0],
        positions=[p for p in rows(POSITIONS) if p.account == account],
        open_orders=[o for o in rows(ORDERS) if o.account == account and o.status == "open"],
        trades=[t for t in rows(TRADES) if t.account == account],
        daily_pnl=[d for d in rows(DAILY_PNL) if d.account == account],
    )


def reconcile(rows: RowSource[Any]) -> RowMismatch | None:
    """The auditor's identities, per account; the first account row that breaks one.

    cash   = initial balance + realised PnL - fees - cost of the open positions
    equity = cash + the value of every open position (last price, or cost before any candle)
    """
    positions: dict[str, list[PositionRow]] = {}
    for position in rows(POSITIONS):
        positions.setdefault(position.account, []).append(position)
    for account in rows(ACCOUNTS):
        held = positions.get(account.account, [])
        cash = account.initial_balance + account.realised_pnl - account.fees - sum((p.cost for p in held), ZERO)
        equity = account.cash + sum((p.value for p in held), ZERO)
        if cash != account.cash:
            return RowMismatch(table=ACCOUNTS.name, key=account.account,
                               message=f"cash is {account.cash}, but initial balance + realised PnL - fees - "
                                       f"open cost is {cash}")
        if equity != account.equity:
            return RowMismatch(table=ACCOUNTS.name, key=account.account,
                               message=f"equity is {account.equity}, but cash + positions at last price is {equity}")
    return None
