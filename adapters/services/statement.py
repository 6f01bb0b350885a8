"""`tradeledger statement`: the figures of an auditor's statement of one account, from the log alone.

One pass over the log up to the cut (`--as-of T`, business time, as `replay
--as-of`) folds the portfolio read model afresh and the export's log tables
(`adapters/export_rows.py`: journal lines, rejections, halts); the checks
(`verify`'s log checks and `reproduce`) run over the whole store, since they
vouch for the store the statement is drawn from. Rendering is
`adapters/statement_html.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa

from tradeledger.adapters.eventlog import EventLog, to_record
from tradeledger.adapters.export_rows import HaltRow, LogRows, RejectionRow
from tradeledger.adapters.services import audit, books
from tradeledger.adapters.services.books import TrialBalance
from tradeledger.adapters.services.backtest import HUNDRED, PERCENT, max_drawdown
from tradeledger.adapters.services.reproduce import reproduce
from tradeledger.domain.trader import Trader
from tradeledger.domain.values import Side
from tradeledger.domain.account import money
from tradeledger.projections.fold import Recorded
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_rows import EQUITY, FILLS, DailyPnlRow, TradeRow
from tradeledger.projections.portfolio_view import account_portfolio
from tradeledger.projections.replay import ReadModels, business_time, last_position, pages

ZERO = Decimal(0)
CURVE_POINTS = 2000  # the equity and drawdown curves keep at most about this many points (the extremes survive)
CHECKPOINT = "Checkpoint.Signed"  # the signed checkpoint event's class (H1's notary), found by name
STORE_IDENTITY = "store_identity"  # the table that holds the store's id, in stores that record one


class StoreIdentity(msgspec.Struct, kw_only=True):
    store_id: str | None  # None until the store records one
    database: str  # the database URL, password redacted
    head_position: int
    cut_position: int
    as_of: datetime | None


class CheckResult(msgspec.Struct, kw_only=True):
    ok: bool
    summary: str
    findings: list[str]


class Summary(msgspec.Struct, kw_only=True):
    account: str
    quote_currency: str
    initial_balance: Decimal
    cash: Decimal
    equity: Decimal
    return_percent: Decimal
    max_drawdown_percent: Decimal
    gross_pnl: Decimal  # realised, before fees
    fees: Decimal
    net_pnl: Decimal
    trades: int
    open_positions: int


class CurvePoint(msgspec.Struct, frozen=True, kw_only=True):
    time: datetime
    equity: Decimal
    drawdown_percent: Decimal  # below the running peak


class CashReconciliation(msgspec.Struct, kw_only=True):
    """initial balance + sells - buys - fees = cash (sells and buys at fill value, price × quantity)."""

    initial_balance: Decimal
    sells: Decimal
    buys: Decimal
    fees: Decimal
    computed: Decimal
    cash: Decimal
    ok: bool


class Statement(msgspec.Struct, kw_only=True):
    generated_at: datetime
    store: StoreIdentity
    checkpoint: dict[str, Any] | None  # the latest signed checkpoint's recorded fields, None when there is none
    verify: CheckResult
    reproduce: CheckResult
    summary: Summary
    curve: list[CurvePoint]
    trades: list[TradeRow]
    halts: list[HaltRow]
    rejections: list[RejectionRow]
    daily_pnl: list[DailyPnlRow]
    cash: CashReconciliation
    trial_balance: TrialBalance


class NoAccount(LookupError):
    """The account has no events up to the cut."""


class StatementLog(LogRows):
    """The export's log tables, plus the latest signed checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.checkpoint: dict[str, Any] | None = None

    def apply(self, events: Iterable[Recorded]) -> None:
        events = list(events)
        super().apply(events)
        for recorded in events:
            if recorded.type.__qualname__ == CHECKPOINT:
                record = to_record(recorded)
                self.checkpoint = {"position": record.position, "recorded_at": record.recorded_at, **record.data}


def statement(log: EventLog, trader_factory: Callable[[], Trader], *, account: str, database: str,
              store_id: str | None, as_of: datetime | None, now: datetime) -> Statement:
    """The statement of `account` up to business time `as_of` (the whole log when None); NoAccount if none."""
    head = log.head()
    cut = head if as_of is None else last_position(log, as_of, business_time)
    models, logged = ReadModels((PORTFOLIO,)), StatementLog()
    for page in pages(log, until=cut):
        models.apply(page)
        logged.apply(page)
    rows = models.tables.rows
    portfolio = account_portfolio(rows, account)
    if portfolio is None:
        raise NoAccount(f"account {account!r} has no events up to then")
    curve = drawdown_curve((row.time, row.equity) for row in rows(EQUITY) if row.account == account)
    fills = [fill for fill in rows(FILLS) if fill.account == account]
    return Statement(
        generated_at=now,
        store=StoreIdentity(store_id=store_id, database=database, head_position=head, cut_position=cut,
                            as_of=as_of),
        checkpoint=logged.checkpoint, verify=verify_result(log), reproduce=reproduce_result(log, trader_factory),
        summary=summarise(portfolio.account, [point.equity for point in curve], len(portfolio.positions)),
        curve=downsample(curve),
        trades=portfolio.trades, halts=[h for h in logged.halts if h.account == account],
        rejections=[r for r in logged.rejections if r.account == account], daily_pnl=portfolio.daily_pnl,
        cash=reconcile_cash(portfolio.account.initial_balance, portfolio.account.cash, fills),
        trial_balance=book_of(books.trial_balance(log, position=cut), account))


def summarise(row: Any, curve: Sequence[Decimal], open_positions: int) -> Summary:
    initial = row.initial_balance
    return Summary(
        account=row.account, quote_currency=row.quote_currency, initial_balance=initial, cash=row.cash,
        equity=row.equity, return_percent=((row.equity / initial - 1) * HUNDRED).quantize(PERCENT),
        max_drawdown_percent=max_drawdown(curve), gross_pnl=row.realised_pnl, fees=row.fees,
        net_pnl=row.realised_pnl - row.fees, trades=row.trades_closed, open_positions=open_positions)


def verify_result(log: EventLog) -> CheckResult:
    report = audit.verify_log(log)
    summary = (f"{report.events} events in {report.streams} streams: hash chains and ledger invariants hold"
               if report.ok else f"FAILED: {len(report.findings)} finding(s)")
    return CheckResult(ok=report.ok, summary=summary, findings=[str(f) for f in report.findings[:20]])


def reproduce_result(log: EventLog, trader_factory: Callable[[], Trader]) -> CheckResult:
    report = reproduce(log, trader_factory)
    if report.ok:
        return CheckResult(ok=True, findings=[], summary=f"{report.candles} candles replayed, {report.decisions} "
                                                         "decisions reproduced exactly")
    return CheckResult(ok=False, summary=f"DIVERGED after {report.candles} candles",
                       findings=[str(report.divergence)])


def reconcile_cash(initial: Decimal, cash: Decimal, fills: Iterable[Any]) -> CashReconciliation:
    sells = buys = fees = ZERO
    for fill in fills:
        value = money(fill.price * fill.quantity)  # the amount the fill's journal posts
        if fill.side is Side.SELL:
            sells += value
        else:
            buys += value
        fees += fill.fee
    computed = initial + sells - buys - fees
    return CashReconciliation(initial_balance=initial, sells=sells, buys=buys, fees=fees, computed=computed,
                              cash=cash, ok=computed == cash)


def book_of(trial: TrialBalance, account: str) -> TrialBalance:
    """The trial balance of one trading account's ledger (the books service's covers every account)."""
    balances = [b for b in trial.balances if b.book == account]
    total = sum((b.balance for b in balances), ZERO)
    return TrialBalance(position=trial.position, as_of=trial.as_of, balances=balances, total=total,
                        balanced=total == 0)


def drawdown_curve(points: Iterable[tuple[datetime, Decimal]]) -> list[CurvePoint]:
    peak, curve = ZERO, []
    for time, equity in points:
        peak = max(peak, equity)
        drawdown = (peak - equity) / peak * HUNDRED if peak > 0 else ZERO
        curve.append(CurvePoint(time=time, equity=equity, drawdown_percent=drawdown.quantize(PERCENT)))
    return curve


def downsample(curve: list[CurvePoint], limit: int = CURVE_POINTS) -> list[CurvePoint]:
    """At most about `limit` points: per bucket its first, lowest-equity and deepest-drawdown points, in time order,
    so the chart keeps every trough."""
    if len(curve) <= limit:
        return curve
    size = -(-len(curve) * 3 // limit)  # three points per bucket
    kept: list[CurvePoint] = []
    for start in range(0, len(curve), size):
        bucket = curve[start:start + size]
        picks = {0, min(range(len(bucket)), key=lambda i: bucket[i].equity),
                 max(range(len(bucket)), key=lambda i: bucket[i].drawdown_percent)}
        kept.extend(bucket[i] for i in sorted(picks))
    if kept[-1] is not curve[-1]:
        kept.append(curve[-1])
    return kept


def recorded_store_id(engine: sa.Engine) -> str | None:
    """The id in the store's `store_identity` table; None when the store has no such table or row."""
    if not sa.inspect(engine).has_table(STORE_IDENTITY):
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(sa.text("*")).select_from(sa.table(STORE_IDENTITY))).mappings().first()
    return None if row is None else str(row.get("store_id", next(iter(row.values()))))
