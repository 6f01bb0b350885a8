"""`tradeledger backtest`: the agent over a file as fast as it goes, then a performance summary.

The summary is read from the log with the portfolio projection's own fold, so
it shows exactly what the dashboard and the auditor see: equity marked at
every candle, round trips net of both legs' fees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import msgspec

from tradeledger.adapters.inputfile import InputFile
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.adapters.quality import QualityReport
from tradeledger.domain.values import Candle
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_rows import EQUITY, TradeRow
from tradeledger.projections.portfolio_view import account_portfolio
from tradeledger.projections.replay import replay
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
    data: QualityReport | None = None  # the market data's report, every gap listed (set by the CLI)


def run(session: TradingSession, feed: EventFeed, candles: Sequence[Candle], *, batch_size: int,
        progress: Callable[[int], None] | None = None, data: InputFile | None = None) -> BacktestResult:
    """The session over `candles` (resumed here: it takes the lease), then the summary read from `feed`;
    `data`: the file the candles were read from, recorded in `AgentRun.Started`."""
    started = time.perf_counter()
    session.resume()
    session.start(("backtest",), data)
    try:
        processed = session.run_feed(candles, batch_size=batch_size, progress=progress)
    except BaseException as error:
        session.stop(f"failed: {error!r}", clean=False)
        raise
    session.stop("backtest finished")
    return summarise(feed, session.settings.trading.account, processed, time.perf_counter() - started)


def summarise(feed: EventFeed, account: str, candles: int, seconds: float) -> BacktestResult:
    tables = replay(feed, projections=(PORTFOLIO,)).tables
    view = account_portfolio(tables.rows, account)
    if view is None:
        raise LookupError(f"account {account!r} has no events in this store")
    initial, equity = view.account.initial_balance, view.account.equity
    wins = sum(1 for t in view.trades if t.pnl > 0)
    return BacktestResult(
        candles=candles, seconds=round(seconds, 3), initial_balance=initial, final_equity=equity,
        return_percent=((equity / initial - 1) * HUNDRED).quantize(PERCENT),
        max_drawdown_percent=max_drawdown([row.equity for row in tables.rows(EQUITY) if row.account == account]),
        trades=len(view.trades),
        win_rate_percent=(Decimal(wins) / len(view.trades) * HUNDRED).quantize(PERCENT) if view.trades else Decimal(0),
        gross_pnl=view.account.realised_pnl, fees=view.account.fees,
        net_pnl=view.account.realised_pnl - view.account.fees, quote_currency=view.account.quote_currency,
        closed_trades=view.trades,
    )


def max_drawdown(curve: Sequence[Decimal]) -> Decimal:
    """The largest fall from a running peak, in percent of that peak."""
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
