"""The export's tables that no read model keeps: every signal, the candles, journal lines, rejections, halts.

`LogRows` folds the log itself (decoded `Recorded` events, in position
order) into one row per fact, each with the log position of the event that
recorded it, its business time (`at`) and its recorded time (`recorded_at`),
so a row can be traced to its event and the event to its leaf. The account
table (`account_rows`) adds the portfolio read model's totals, folded afresh
in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.domain.values import MemberPrediction, Prediction, Side
from tradeledger.projections.fold import Recorded
from tradeledger.projections.portfolio_rows import ACCOUNTS
from tradeledger.projections.rows import RowSource

ZERO = Decimal(0)


class LoggedRow(msgspec.Struct, kw_only=True):
    """Where a row comes from: the event's log position and its two clocks."""

    position: int
    at: datetime
    recorded_at: datetime


class SignalLogRow(LoggedRow, kw_only=True):
    symbol: str
    timeframe: str
    candle_time: datetime
    prediction: Prediction
    confidence: float
    is_actionable: bool
    data_quality: float
    model_name: str
    model_version: str
    features_used: tuple[str, ...]
    feature_values: dict[str, float]
    individual_predictions: tuple[MemberPrediction, ...]


class CandleRow(LoggedRow, kw_only=True):
    symbol: str
    timeframe: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quality_flags: tuple[str, ...]


class JournalLineRow(LoggedRow, kw_only=True):
    account: str
    event: str  # Opened (the opening balance) or OrderFilled
    order_id: UUID | None
    line: int  # the line's place in its event's journal, from 0
    ledger_account: str
    amount: Decimal  # positive debit, negative credit
    debit: Decimal
    credit: Decimal


class RejectionRow(LoggedRow, kw_only=True):
    account: str
    symbol: str
    side: Side
    rule: str
    reason: str


class HaltRow(LoggedRow, kw_only=True):
    account: str
    action: str  # halted or resumed
    rule: str | None  # the rule that halted (None for a resume)
    by: str
    reason: str
    metrics: dict[str, str]


class AccountTotalsRow(LoggedRow, kw_only=True):
    """The opening balance (position and clocks of `Account.Opened`) and the totals at the export's head."""

    account: str
    quote_currency: str
    initial_balance: Decimal
    cash: Decimal
    equity: Decimal
    gross_pnl: Decimal  # realised, before fees
    fees: Decimal
    net_pnl: Decimal
    trades: int
    head_position: int


class LogRows:
    """The log folded into the tables above, one `apply` per page of events."""

    def __init__(self) -> None:
        self.markets: dict[UUID | None, tuple[str, str]] = {}
        self.accounts: dict[UUID | None, str] = {}
        self.opened: dict[str, tuple[LoggedRow, Account.Opened]] = {}
        self.placed: dict[UUID, int] = {}  # order id -> the position of its OrderPlaced
        self.signals: list[SignalLogRow] = []
        self.candles: list[CandleRow] = []
        self.journal: list[JournalLineRow] = []
        self.rejections: list[RejectionRow] = []
        self.halts: list[HaltRow] = []

    def apply(self, events: Iterable[Recorded]) -> None:
        for recorded in events:
            handler = self.HANDLERS.get(recorded.type)
            if handler is not None:
                handler(self, recorded)

    def listed(self, recorded: Recorded) -> None:
        e: Market.Listed = recorded.event
        self.markets[recorded.stream] = (e.symbol, e.timeframe)

    def candle(self, recorded: Recorded) -> None:
        e: Market.CandleClosed = recorded.event
        symbol, timeframe = self.markets[recorded.stream]
        self.candles.append(CandleRow(
            **where(recorded), symbol=symbol, timeframe=timeframe, open_time=e.open_time, open=e.open, high=e.high,
            low=e.low, close=e.close, volume=e.volume, quality_flags=e.quality_flags))

    def signal(self, recorded: Recorded) -> None:
        e: Market.SignalGenerated = recorded.event
        self.signals.append(SignalLogRow(
            **where(recorded), symbol=e.symbol, timeframe=e.timeframe, candle_time=e.candle_time,
            prediction=e.prediction, confidence=e.confidence, is_actionable=e.is_actionable,
            data_quality=e.data_quality, model_name=e.model_name, model_version=e.model_version,
            features_used=e.features_used, feature_values=e.feature_values,
            individual_predictions=e.individual_predictions))

    def account_opened(self, recorded: Recorded) -> None:
        e: Account.Opened = recorded.event
        self.accounts[recorded.stream] = e.name
        self.opened[e.name] = (LoggedRow(**where(recorded)), e)
        self.post(recorded, "Opened", None, e.journal)

    def order_placed(self, recorded: Recorded) -> None:
        self.placed[recorded.event.order_id] = recorded.position

    def filled(self, recorded: Recorded) -> None:
        e: Account.OrderFilled = recorded.event
        self.post(recorded, "OrderFilled", e.order_id, e.journal)

    def post(self, recorded: Recorded, event: str, order_id: UUID | None, journal: Iterable[Any]) -> None:
        account = self.accounts[recorded.stream]
        for line, posting in enumerate(journal):
            amount = posting.amount
            self.journal.append(JournalLineRow(
                **where(recorded), account=account, event=event, order_id=order_id, line=line,
                ledger_account=posting.account, amount=amount, debit=max(amount, ZERO), credit=max(-amount, ZERO)))

    def rejected(self, recorded: Recorded) -> None:
        e: Account.OrderRejected = recorded.event
        self.rejections.append(RejectionRow(**where(recorded), account=self.accounts[recorded.stream],
                                            symbol=e.symbol, side=e.side, rule=e.rule, reason=e.reason))

    def halted(self, recorded: Recorded) -> None:
        e: Account.TradingHalted = recorded.event
        self.halts.append(HaltRow(**where(recorded), account=self.accounts[recorded.stream], action="halted",
                                  rule=e.rule, by=e.by, reason=e.reason, metrics=dict(e.metrics)))

    def resumed(self, recorded: Recorded) -> None:
        e: Account.TradingResumed = recorded.event
        self.halts.append(HaltRow(**where(recorded), account=self.accounts[recorded.stream], action="resumed",
                                  rule=None, by=e.by, reason=e.reason, metrics={}))

    HANDLERS = {
        Market.Listed: listed, Market.CandleClosed: candle, Market.SignalGenerated: signal,
        Account.Opened: account_opened, Account.OrderPlaced: order_placed, Account.OrderFilled: filled,
        Account.OrderRejected: rejected, Account.TradingHalted: halted, Account.TradingResumed: resumed,
    }

    def account_rows(self, rows: RowSource[Any], head: int) -> list[AccountTotalsRow]:
        """One row per account: its opening (from the log) and its totals (the portfolio fold's `rows`)."""
        totals = []
        for account in rows(ACCOUNTS):
            opened, e = self.opened[account.account]
            gross = account.realised_pnl
            totals.append(AccountTotalsRow(
                position=opened.position, at=opened.at, recorded_at=opened.recorded_at, account=account.account,
                quote_currency=e.quote_currency, initial_balance=e.initial_balance, cash=account.cash,
                equity=account.equity, gross_pnl=gross, fees=account.fees, net_pnl=gross - account.fees,
                trades=account.trades_closed, head_position=head))
        return totals


def where(recorded: Recorded) -> dict[str, Any]:
    at, recorded_at = recorded.clocks
    return {"position": recorded.position, "at": at, "recorded_at": recorded_at}
