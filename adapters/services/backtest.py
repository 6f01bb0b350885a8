"""`tradeledger backtest`: the agent over a file as fast as it goes, then a performance summary.

The summary is the portfolio projection's own fold, so it shows exactly what
the dashboard and the auditor see: equity marked at every candle, round trips
net of both legs' fees. The run folds each append's events as they are written
(services.history_tap) instead of reading the log back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import msgspec

from tradeledger.adapters.inputfile import InputFile
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.adapters.quality import QualityReport
from tradeledger.adapters.services.metrics import Metrics, Period, compute
from tradeledger.adapters.services.history_tap import tapped
from tradeledger.adapters.services.metrics_log import History, HistoryLog, collect
from tradeledger.domain.values import Candle
from tradeledger.projections.portfolio_rows import TradeRow
from tradeledger.projections.runner import EventFeed

HUNDRED = Decimal(100)
PERCENT = Decimal("0.01")


class BacktestResult(msgspec.Struct, frozen=True, kw_only=True):
    candles: int
    seconds: float
    initial_balance: Decimal
    final_equity: Decimal
    return_percent: Decimal
    max_drawdown_percent: Decimal
    trades: int
    win_rate_percent: Decimal
    gross_pnl: Decimal  # closed positions' result before fees
    fees: Decimal  # every fee paid (an open position's entry fee included)
    net_pnl: Decimal  # gross_pnl - fees
    quote_currency: str
    closed_trades: list[TradeRow]  # each trade's `pnl` is net of both legs' `fees`
    metrics: Metrics  # everything traders compare (docs/metrics.md)
    data: QualityReport | None = None  # the market data's report, every gap listed (set by the CLI; one file)
    data_files: dict[str, QualityReport] = {}  # every file's report by file name (set by the CLI; any number)


def run(session: TradingSession, feed: EventFeed, candles: Sequence[Candle], *, batch_size: int,
        progress: Callable[[int], None] | None = None, data: Sequence[InputFile] = (),
        breakdown: Period | None = None) -> BacktestResult:
    """The session over `candles` (resumed here: it takes the lease), then the summary read from `feed`;
    `data`: the files the candles were read from (several: a portfolio), recorded in `AgentRun.Started`."""
    started = time.perf_counter()
    history = HistoryLog(feed, session.settings.trading.account)
    session.resume()
    with tapped(session, history):
        session.start(("backtest",), data)
        try:
            processed = session.run_feed(candles, batch_size=batch_size, progress=progress)
        except BaseException as error:
            session.stop(f"failed: {error!r}", clean=False)
            raise
        session.stop("backtest finished")
    recorded = history.history()
    del history  # its folds' rows (one equity row a candle) go before the summary's own lists: a lower peak
    return summary(recorded, processed, time.perf_counter() - started, breakdown=breakdown)


def summarise(feed: EventFeed, account: str, candles: int, seconds: float, *,
              breakdown: Period | None = None) -> BacktestResult:
    """The summary of `account`'s whole history, read from the log in one pass."""
    return summary(collect(feed, account), candles, seconds, breakdown=breakdown)


def summary(history: History, candles: int, seconds: float, *, breakdown: Period | None = None) -> BacktestResult:
    initial, equity, trades = history.initial_balance, history.final_equity, history.trades
    metrics = compute(history, breakdown=breakdown)
    return BacktestResult(
        candles=candles, seconds=round(seconds, 3), initial_balance=initial, final_equity=equity,
        return_percent=((equity / initial - 1) * HUNDRED).quantize(PERCENT),
        max_drawdown_percent=Decimal(repr(metrics.max_drawdown.percent)).quantize(PERCENT), trades=len(trades),
        win_rate_percent=(Decimal(metrics.wins) / len(trades) * HUNDRED).quantize(PERCENT) if trades else Decimal(0),
        gross_pnl=metrics.gross_pnl, fees=metrics.fees, net_pnl=metrics.net_pnl,
        quote_currency=history.quote_currency, closed_trades=trades, metrics=metrics,
    )


def max_drawdown(curve: Sequence[Decimal]) -> Decimal:
    """The largest fall from a running peak, in percent of that peak (exact; the statement's figure)."""
    peak, worst = Decimal(0), Decimal(0)
    for equity in curve:
        peak = max(peak, equity)
        if peak > 0:
            worst = max(worst, (peak - equity) / peak * HUNDRED)
    return worst.quantize(PERCENT)


def describe(result: BacktestResult) -> str:
    q = result.quote_currency
    rate = result.candles / result.seconds if result.seconds else 0
    return "\n".join([
        f"candles        {result.candles:,} in {result.seconds:.1f}s ({rate:,.0f}/s)",
        f"final equity   {result.final_equity.normalize():f} {q} (initial {result.initial_balance.normalize():f})",
        f"return         {result.return_percent}%",
        f"max drawdown   {result.max_drawdown_percent}%",
        f"trades         {result.trades} (win rate {result.win_rate_percent}%)",
        f"gross PnL      {result.gross_pnl.normalize():f} {q} (closed positions, before fees)",
        f"fees           {result.fees.normalize():f} {q}",
        f"net PnL        {result.net_pnl.normalize():f} {q} (gross PnL - fees)",
    ])
