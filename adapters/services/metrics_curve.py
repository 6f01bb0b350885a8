"""The equity curve's figures (drawdown, period returns, Sharpe, Sortino, Calmar, CAGR), as backtesting.py's
`compute_stats` has them; vectorised with polars, which is imported only when a curve is computed."""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import msgspec

from tradeledger.adapters.services.metrics_log import CandlePoint, History

if TYPE_CHECKING:
    import polars as pl

T = TypeVar("T")
YEAR_DAYS = 365.25  # CAGR's year
MICROS = 1_000_000
# backtesting.py: by the candles' spacing in days, the return period and the periods a year; else daily returns,
# 365 a year when the data has weekends, 252 without
BY_SPACING = {7: ("1w", 52), 31: ("1mo", 12), 365: ("1y", 1)}
PERIOD_NAMES = {"1d": "daily", "1w": "weekly", "1mo": "monthly", "1y": "yearly"}


class Span(msgspec.Struct, frozen=True, kw_only=True):
    """Business times, both ends included; None: open-ended."""

    start: datetime | None = None
    end: datetime | None = None

    def holds(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at <= self.end)

    def within(self, rows: Sequence[T], time: Callable[[T], datetime]) -> list[T]:
        """The rows whose time is in the span (the whole list, unfiltered, when the span is unbounded)."""
        if self.start is None and self.end is None:
            return list(rows)
        return [row for row in rows if self.holds(time(row))]


class Drawdown(msgspec.Struct, frozen=True, kw_only=True):
    percent: float  # the largest fall from a running peak, in percent of that peak
    peak_at: datetime | None  # the peak it fell from
    trough_at: datetime | None  # the lowest point of that fall
    recovered_at: datetime | None  # back at the peak (None: not yet)


class Ratios(msgspec.Struct, frozen=True, kw_only=True):
    """Annualised from the curve's period returns (fractions; None where undefined)."""

    annualisation: str
    period_returns: list[float]
    annualised: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None


class Curve(msgspec.Struct, frozen=True, kw_only=True):
    open_times: list[datetime]  # the span's distinct candle open times, sorted
    points: list[tuple[datetime, Decimal]]  # (close time, equity)
    drawdowns: list[float]  # each point's fall from the running peak, percent
    initial: Decimal  # the equity before the span
    final: Decimal
    peak: Decimal
    drawdown: Drawdown
    ratios: Ratios

    @property
    def start(self) -> datetime | None:
        return self.points[0][0] if self.points else None

    @property
    def end(self) -> datetime | None:
        return self.points[-1][0] if self.points else None

    @property
    def cagr(self) -> float | None:
        if not self.points:
            return None
        years = (self.points[-1][0] - self.points[0][0]).total_seconds() / 86400 / YEAR_DAYS
        return float(self.final / self.initial) ** (1 / years) - 1 if years else None

    @property
    def calmar(self) -> float | None:
        annualised = self.ratios.annualised
        return annualised / (self.drawdown.percent / 100) if annualised is not None and self.drawdown.percent else None


def curve(history: History, span: Span, candles: Mapping[str, Sequence[CandlePoint]]) -> Curve:
    import polars as pl

    before = bisect_left(history.equity, span.start, key=first) if span.start is not None else 0
    initial = history.equity[before - 1][1] if before else history.initial_balance
    points = span.within(history.equity, first)
    # Epoch microseconds: polars converts ints far faster than datetime objects. A point is at its candle's close;
    # a microsecond earlier it is in the period (day, week) of the candle's open, as backtesting.py's bars are.
    stamps = [int(t.timestamp() * MICROS) - 1 for t, _ in points]
    frame = pl.DataFrame({"time": stamps, "equity": [float(e) for _, e in points]},
                         schema={"time": pl.Int64(), "equity": pl.Float64()})
    frame = frame.with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))
    frame = frame.with_columns(peak=pl.max_horizontal(pl.col("equity").cum_max(), pl.lit(float(initial))))
    frame = frame.with_columns(drawdown=1 - pl.col("equity") / pl.col("peak"))
    series = list(candles.values())
    open_times = ([c.time for c in series[0]] if len(series) == 1
                  else sorted({c.time for rows in series for c in rows}))
    return Curve(
        open_times=open_times, points=points, drawdowns=(frame["drawdown"] * 100).to_list(),
        initial=initial, final=points[-1][1] if points else initial,
        peak=max(initial, max((e for _, e in points), default=initial)),
        drawdown=max_drawdown(frame, [t for t, _ in points]), ratios=ratios(frame, open_times),
    )


def first(point: tuple[datetime, Decimal]) -> datetime:
    return point[0]


def max_drawdown(frame: pl.DataFrame, times: Sequence[datetime]) -> Drawdown:
    if frame.is_empty() or not frame["drawdown"].max():
        return Drawdown(percent=0.0, peak_at=None, trough_at=None, recovered_at=None)
    trough = int(frame["drawdown"].arg_max())  # type: ignore[arg-type]
    peak = frame["peak"][trough]
    equity = frame["equity"].to_list()
    peak_at = next((i for i in range(trough, -1, -1) if equity[i] >= peak), None)
    back = next((i for i in range(trough + 1, len(equity)) if equity[i] >= peak), None)
    return Drawdown(percent=frame["drawdown"][trough] * 100, peak_at=None if peak_at is None else times[peak_at],
                    trough_at=times[trough], recovered_at=None if back is None else times[back])


def ratios(frame: pl.DataFrame, open_times: Sequence[datetime]) -> Ratios:
    import polars as pl

    every, per_year = annualisation(open_times)
    returns = (frame.sort("time").group_by_dynamic("time", every=every).agg(pl.col("equity").last())
               ["equity"].pct_change().drop_nulls().to_list())
    name = f"{PERIOD_NAMES[every]} equity returns, {per_year} periods a year"
    if not returns:
        return Ratios(annualisation=name, period_returns=[], annualised=None, volatility=None, sharpe=None,
                      sortino=None)
    g = geometric_mean(returns)
    annualised = (1 + g) ** per_year - 1
    variance = statistics.variance(returns) if len(returns) > 1 else math.nan
    # backtesting.py's annualised volatility of compounded returns
    vol = math.sqrt((variance + (1 + g) ** 2) ** per_year - (1 + g) ** (2 * per_year)) if len(returns) > 1 else None
    downside = math.sqrt(statistics.fmean(min(r, 0.0) ** 2 for r in returns)) * math.sqrt(per_year)
    return Ratios(annualisation=name, period_returns=returns, annualised=annualised, volatility=vol,
                  sharpe=annualised / vol if vol else None, sortino=annualised / downside if downside else None)


def annualisation(open_times: Sequence[datetime]) -> tuple[str, int]:
    """backtesting.py's: the return period and how many make a year, from the candles' spacing and weekdays."""
    if len(open_times) < 2:
        return "1d", 365
    tail = open_times[-100:]
    spacing = statistics.median((b - a).total_seconds() for a, b in zip(tail, tail[1:])) / 86400
    if int(spacing) in BY_SPACING:
        return BY_SPACING[int(spacing)]
    weekends = sum(1 for t in open_times if t.weekday() >= 5) / len(open_times)
    return "1d", 365 if weekends > 2 / 7 * 0.6 else 252


def geometric_mean(returns: Sequence[float]) -> float:
    """backtesting.py's: 0 when any return loses everything."""
    if not returns or any(1 + r <= 0 for r in returns):
        return 0.0
    return math.exp(sum(math.log1p(r) for r in returns) / len(returns)) - 1
