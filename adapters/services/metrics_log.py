"""What the metrics are computed from, read from the log in one pass: the portfolio fold and the candles.

The portfolio projection's own fold gives the equity curve (one point per
candle close), the round trips and the fills, exactly as the dashboard and the
auditor see them; the candles (no read model keeps them) give the market
change and the exposure's candle count.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from tradeledger.adapters.services.charts import FillLog, FillPoint
from tradeledger.domain.market import Market
from tradeledger.projections.fold import Recorded
from tradeledger.projections.models import MODELS_PROJECTION
from tradeledger.projections.models_view import ModelsView, scoreboard
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_rows import EQUITY, FILLS, TRADES, FillRow, TradeRow
from tradeledger.projections.portfolio_view import account_portfolio
from tradeledger.projections.replay import ReadModels, pages
from tradeledger.projections.runner import EventFeed


HISTORY_PAGE = 2_000  # events decoded at a time: a page holds its decoded events, ~1 KB each, while it folds


class CandlePoint(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One candle (gc=False: a long history holds many, and none refers to anything that could form a cycle)."""

    time: datetime  # the candle's open time
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class History(msgspec.Struct, kw_only=True):
    """One account's history as the metrics read it (every list in time order)."""

    account: str
    quote_currency: str
    initial_balance: Decimal
    final_equity: Decimal
    equity: list[tuple[datetime, Decimal]]  # (candle close time, equity)
    trades: list[TradeRow]
    fills: list[FillRow]
    candles: dict[str, list[CandlePoint]]  # by symbol
    fill_points: list[FillPoint] = []  # the chart's markers: every fill with its order's reason
    models: ModelsView | None = None  # the model scoreboard (projections.models), when asked for


class CandleLog:
    """The candles of every market, by symbol, as `pages` yields them."""

    TYPES = frozenset({Market.CandleClosed, Market.Listed})  # what `apply` reads

    def __init__(self) -> None:
        self.markets: dict[UUID | None, str] = {}
        self.candles: dict[str, list[CandlePoint]] = {}
        # Equal prices (as written) share one Decimal: a long history repeats them, at ~100 bytes each.
        self.prices: dict[str, Decimal] = {}
        # The shared Decimals by id (each is kept alive here, so its id names it alone): the candles a backtest
        # folds as it runs already share their prices, and an id is found faster than a str made.
        self.shared: dict[int, Decimal] = {}

    def apply(self, events: Iterable[Recorded]) -> None:
        # A price already shared is found by its id, else by its text (`or`: a zero is falsy, and `price` gives it).
        shared, price = self.shared.get, self.price
        stream, series = None, None  # the last candle's market and list: a run of candles is mostly one market's
        for recorded in events:
            if recorded.type is Market.CandleClosed:
                e: Market.CandleClosed = recorded.event
                if series is None or recorded.stream is not stream:
                    stream, series = recorded.stream, self.candles.setdefault(self.markets[recorded.stream], [])
                series.append(CandlePoint(
                    time=e.open_time, close_time=e.timestamp, open=shared(id(e.open)) or price(e.open),
                    high=shared(id(e.high)) or price(e.high), low=shared(id(e.low)) or price(e.low),
                    close=shared(id(e.close)) or price(e.close), volume=e.volume))
            elif recorded.type is Market.Listed:
                self.markets[recorded.stream] = recorded.event.symbol
                series = None

    def price(self, value: Decimal) -> Decimal:
        """The Decimal written as `value` is, shared (found by its text)."""
        shared = self.prices.setdefault(str(value), value)
        self.shared[id(shared)] = shared
        return shared


class HistoryLog:
    """The folds behind `History`, kept in memory and moved forward by the log's new events only (the API's
    /api/metrics asks again and again; each answer folds what was appended since the last)."""

    def __init__(self, feed: EventFeed, account: str, *, with_models: bool = False) -> None:
        """`with_models`: also fold the model scoreboard (the HTML report shows it; the summary does not)."""
        self.feed, self.account = feed, account
        self.with_models = with_models
        self.models = ReadModels((PORTFOLIO, MODELS_PROJECTION) if with_models else (PORTFOLIO,))
        self.candles, self.fills = CandleLog(), FillLog(account)
        # The event types some fold here reads: an append's other events (signals) need not be handed over.
        self.types = frozenset(t for fold in self.models.folds for t in fold.handlers) | CandleLog.TYPES \
            | FillLog.HANDLERS.keys()
        self.position = 0
        self.lock = threading.Lock()

    def history(self, *, until: int | None = None) -> History:
        """The account's history up to log position `until` (the head when None); LookupError: no such account."""
        with self.lock:
            self.catch_up(until)
            return self.read()

    def appended(self, first: int, events: Sequence[Recorded], last: int) -> None:
        """Fold an append of log positions `first` to `last` as it is made, so `history` need not read it back:
        `events`, those of its events of the `types` these folds read. What others appended before it (a
        checkpoint, a command) is read from the log first; but a history older than the first append (a run
        on a store that has one) is left for `history` to read, after the run: read here, it would stand
        between a restart and its first candle (13 s on a store of 1,000,000 candles)."""
        with self.lock:
            if self.position == 0 and first > 1:
                return  # nothing is folded until `history` reads the log from its start
            if first > self.position + 1:
                self.catch_up(first - 1)
            if events:
                self.fold(events)
            self.position = last

    def catch_up(self, until: int | None) -> None:
        # A short gap (a checkpoint between two appends) reads only its own events, not a page beyond them.
        size = HISTORY_PAGE if until is None else max(1, min(HISTORY_PAGE, until - self.position))
        for page in pages(self.feed, after=self.position, until=until, page_size=size):
            self.fold(page)

    def fold(self, page: Sequence[Recorded]) -> None:
        for fold in (self.models, self.candles, self.fills):
            fold.apply(page)
        self.position = page[-1].position

    def read(self) -> History:
        account, rows = self.account, self.models.tables.rows
        view = account_portfolio(rows, account)
        if view is None:
            raise LookupError(f"account {account!r} has no events in this store")
        return History(
            account=account, quote_currency=view.account.quote_currency,
            initial_balance=view.account.initial_balance, final_equity=view.account.equity,
            equity=sorted((row.time, row.equity) for row in rows(EQUITY) if row.account == account),
            trades=sorted((t for t in rows(TRADES) if t.account == account), key=lambda t: t.seq),
            fills=sorted((f for f in rows(FILLS) if f.account == account), key=lambda f: f.position),
            candles={symbol: list(rows) for symbol, rows in self.candles.candles.items()},
            fill_points=list(self.fills.fills),
            models=scoreboard(rows, self.position) if self.with_models else None,
        )


def collect(feed: EventFeed, account: str, *, until: int | None = None, with_models: bool = False) -> History:
    """`account`'s history up to log position `until` (the head when None), in one pass of the log."""
    return HistoryLog(feed, account, with_models=with_models).history(until=until)
