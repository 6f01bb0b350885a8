"""The metrics traders compare, for a backtest or any span of a history, with backtesting.py's definitions.

docs/metrics.md gives every formula. Trade figures are over the round trips
that closed in the span (by exit time); curve figures over the equity points
(one per candle close) in the span; a trade's return is its PnL net of both
legs' fees over its entry value, as backtesting.py's `Trade.pl_pct`. polars
(slow to import) is imported only when a curve is computed.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal

import msgspec

from tradeledger.adapters.services.charts import FillPoint
from tradeledger.adapters.services.metrics_curve import Curve, Drawdown, Span, curve, geometric_mean
from tradeledger.adapters.services.metrics_log import CandlePoint, History
from tradeledger.projections.models_view import ModelsView
from tradeledger.projections.portfolio_rows import TradeRow

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
ZERO = Decimal(0)


class TradeStats(msgspec.Struct, frozen=True, kw_only=True):
    """One row of a table: the trades of one pair, exit reason or period."""

    key: str
    trades: int
    wins: int  # pnl > 0
    losses: int  # pnl <= 0
    win_rate_percent: float | None
    net_pnl: Decimal
    fees: Decimal
    return_percent: float | None  # the sum of the trades' returns
    profit_factor: float | None
    expectancy_percent: float | None
    avg_duration_seconds: float | None
    market_change_percent: float | None = None  # the per-pair table only


class Metrics(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    quote_currency: str
    start: datetime | None
    end: datetime | None
    candles: int
    initial_equity: Decimal
    final_equity: Decimal
    equity_peak: Decimal
    return_percent: float
    cagr_percent: float | None
    annualised_return_percent: float | None
    volatility_percent: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    annualisation: str
    max_drawdown: Drawdown
    trades: int
    wins: int
    losses: int
    win_rate_percent: float | None
    profit_factor: float | None
    expectancy_percent: float | None
    sqn: float | None
    avg_trade_percent: float | None
    best_trade_percent: float | None
    worst_trade_percent: float | None
    best_day_percent: float | None
    worst_day_percent: float | None
    avg_duration_seconds: float | None
    median_duration_seconds: float | None
    max_duration_seconds: float | None
    max_consecutive_wins: int
    max_consecutive_losses: int
    exposure_percent: float
    buy_and_hold_percent: float | None
    gross_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    pairs: list[TradeStats]
    exit_reasons: list[TradeStats]
    breakdown: Period | None
    periods: list[TradeStats]


def compute(history: History, *, start: datetime | None = None, end: datetime | None = None,
            breakdown: Period | None = None) -> Metrics:
    return measure(history, Span(start=start, end=end), breakdown)[0]


def measure(history: History, span: Span, breakdown: Period | None) -> tuple[Metrics, Curve]:
    trades = span.within(history.trades, exit_time)
    candles = {symbol: span.within(rows, close_time) for symbol, rows in history.candles.items()}
    changes = {symbol: market_change(rows) for symbol, rows in candles.items() if rows}
    drawn = curve(history, span, candles)
    fills = span.within(history.fills, attrgetter("filled_at"))
    fees, gross = sum((f.fee for f in fills), ZERO), sum((f.realised_pnl for f in fills), ZERO)
    return Metrics(
        account=history.account, quote_currency=history.quote_currency, **curve_figures(drawn),
        **trade_figures(trades), exposure_percent=exposure(drawn.open_times, trades),
        buy_and_hold_percent=percent(mean(list(changes.values()))), gross_pnl=gross, fees=fees, net_pnl=gross - fees,
        pairs=[stats(symbol, rows, changes.get(symbol))
               for symbol, rows in grouped(trades, lambda t: t.symbol, sorted(changes)).items()],
        exit_reasons=[stats(reason, rows) for reason, rows in grouped(trades, exit_reason).items()],
        breakdown=breakdown,
        periods=[] if breakdown is None else [stats(key, rows)
                                              for key, rows in grouped(trades, PERIOD_KEYS[breakdown]).items()],
    ), drawn


def curve_figures(drawn: Curve) -> dict[str, Any]:
    r = drawn.ratios
    return {
        "start": drawn.start, "end": drawn.end, "candles": len(drawn.open_times), "initial_equity": drawn.initial,
        "final_equity": drawn.final, "equity_peak": drawn.peak,
        "return_percent": (float(drawn.final / drawn.initial) - 1) * 100, "cagr_percent": percent(drawn.cagr),
        "annualised_return_percent": percent(r.annualised), "volatility_percent": percent(r.volatility),
        "sharpe": r.sharpe, "sortino": r.sortino, "calmar": drawn.calmar, "annualisation": r.annualisation,
        "max_drawdown": drawn.drawdown, "best_day_percent": percent(max(r.period_returns, default=None)),
        "worst_day_percent": percent(min(r.period_returns, default=None)),
    }


def trade_figures(trades: Sequence[TradeRow]) -> dict[str, Any]:
    returns = [trade_return(t) for t in trades]
    durations = [(t.exit_time - t.entry_time).total_seconds() for t in trades]
    wins = sum(1 for t in trades if t.pnl > 0)
    return {
        "trades": len(trades), "wins": wins, "losses": len(trades) - wins,
        "win_rate_percent": percent(wins / len(trades)) if trades else None,
        "profit_factor": profit_factor(returns), "expectancy_percent": percent(mean(returns)), "sqn": sqn(trades),
        "avg_trade_percent": percent(geometric_mean(returns)) if returns else None,
        "best_trade_percent": percent(max(returns, default=None)),
        "worst_trade_percent": percent(min(returns, default=None)),
        "avg_duration_seconds": mean(durations),
        "median_duration_seconds": statistics.median(durations) if durations else None,
        "max_duration_seconds": max(durations, default=None),
        "max_consecutive_wins": streak(trades, True), "max_consecutive_losses": streak(trades, False),
    }


exit_time = attrgetter("exit_time")
exit_reason = attrgetter("exit_reason")  # the closing sell's; `signal` for trades recorded before exit reasons
close_time = attrgetter("close_time")


def trade_return(trade: TradeRow) -> float:
    """backtesting.py's `Trade.pl_pct`: net PnL over the entry value."""
    return float(trade.pnl / (trade.quantity * trade.entry_price))


PERIOD_KEYS: dict[Period, Callable[[TradeRow], str]] = {
    "day": lambda t: t.exit_time.date().isoformat(),
    "week": lambda t: "{0}-W{1:02d}".format(*t.exit_time.isocalendar()),
    "month": lambda t: t.exit_time.strftime("%Y-%m"),
}


def grouped(trades: Sequence[TradeRow], key: Callable[[TradeRow], str], keys: Sequence[str] = ()
            ) -> dict[str, list[TradeRow]]:
    """The trades by key, sorted by key; every one of `keys` present (a pair traded never still has a row)."""
    groups: dict[str, list[TradeRow]] = {k: [] for k in keys}
    for trade in trades:
        groups.setdefault(key(trade), []).append(trade)
    return dict(sorted(groups.items()))


def stats(key: str, trades: Sequence[TradeRow], change: float | None = None) -> TradeStats:
    returns = [trade_return(t) for t in trades]
    wins = sum(1 for t in trades if t.pnl > 0)
    return TradeStats(
        key=key, trades=len(trades), wins=wins, losses=len(trades) - wins,
        win_rate_percent=percent(wins / len(trades)) if trades else None,
        net_pnl=sum((t.pnl for t in trades), ZERO), fees=sum((t.fees for t in trades), ZERO),
        return_percent=percent(sum(returns)) if returns else None, profit_factor=profit_factor(returns),
        expectancy_percent=percent(mean(returns)),
        avg_duration_seconds=mean([(t.exit_time - t.entry_time).total_seconds() for t in trades]),
        market_change_percent=percent(change),
    )


def percent(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def profit_factor(returns: Sequence[float]) -> float | None:
    """The sum of the winning trades' returns over the sum of the losing ones' (backtesting.py: returns, not PnL)."""
    lost = -sum(r for r in returns if r < 0)
    return sum(r for r in returns if r > 0) / lost if lost else None


def sqn(trades: Sequence[TradeRow]) -> float | None:
    """Van Tharp's system quality number: sqrt(n) * mean PnL / its sample standard deviation."""
    if len(trades) < 2:
        return None
    pnl = [float(t.pnl) for t in trades]
    spread = statistics.stdev(pnl)
    return math.sqrt(len(pnl)) * statistics.fmean(pnl) / spread if spread else None


def streak(trades: Sequence[TradeRow], winning: bool) -> int:
    """The longest run of consecutive winning (pnl > 0) or losing trades, in exit order."""
    longest = run = 0
    for trade in trades:
        run = run + 1 if (trade.pnl > 0) is winning else 0
        longest = max(longest, run)
    return longest


def exposure(open_times: Sequence[datetime], trades: Sequence[TradeRow]) -> float:
    """backtesting.py's: the share of the span's candles from a trade's entry candle to its exit candle, both
    included (its fills are at those candles' opens); closed trades only."""
    if not open_times:
        return 0.0
    held = [0] * (len(open_times) + 1)
    for trade in trades:
        first, last = bisect_left(open_times, trade.entry_time), bisect_right(open_times, trade.exit_time)
        if first < last:
            held[first] += 1
            held[last] -= 1
    inside = depth = 0
    for mark in held[:-1]:
        depth += mark
        inside += depth > 0
    return inside / len(open_times) * 100


def market_change(candles: Sequence[CandlePoint]) -> float:
    """backtesting.py's buy-and-hold return of one pair: its last close over its first close in the span."""
    return float(candles[-1].close / candles[0].close) - 1



class TradePoint(msgspec.Struct, frozen=True, kw_only=True):
    """One closed trade as the report draws it: its two fills (at candle opens)."""

    symbol: str
    entry_time: datetime
    exit_time: datetime
    entry_price: Decimal
    exit_price: Decimal
    quantity: Decimal
    fees: Decimal
    pnl: Decimal  # net of both legs' fees
    return_percent: float
    exit_reason: str


class EquityPoint(msgspec.Struct, frozen=True, kw_only=True):
    time: datetime  # the candle's close time
    equity: Decimal
    drawdown_percent: float


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """The metrics and the data behind the charts, for adapters/report_html.py."""

    title: str
    metrics: Metrics
    candles: dict[str, list[CandlePoint]]
    trades: list[TradePoint]
    equity: list[EquityPoint]
    fills: list[FillPoint] = []  # the span's fills, in log order, with their orders' reasons
    models: ModelsView | None = None  # the model scoreboard over the whole history (projections.models_view)


def report(history: History, *, title: str, start: datetime | None = None, end: datetime | None = None,
           breakdown: Period | None = None) -> Report:
    span = Span(start=start, end=end)
    metrics, drawn = measure(history, span, breakdown)
    return Report(
        title=title, metrics=metrics,
        candles={symbol: span.within(rows, close_time) for symbol, rows in history.candles.items()},
        trades=[TradePoint(symbol=t.symbol, entry_time=t.entry_time, exit_time=t.exit_time, entry_price=t.entry_price,
                           exit_price=t.exit_price, quantity=t.quantity, fees=t.fees, pnl=t.pnl,
                           return_percent=trade_return(t) * 100, exit_reason=exit_reason(t))
                for t in span.within(history.trades, exit_time)],
        equity=[EquityPoint(time=time, equity=equity, drawdown_percent=drawdown)
                for (time, equity), drawdown in zip(drawn.points, drawn.drawdowns)],
        fills=span.within(history.fill_points, attrgetter("time")),
        models=history.models,
    )
