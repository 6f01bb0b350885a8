"""Risk rules: when the agent must stop opening positions, and when it may start again.

Rules and how each one ends:
- max_drawdown_percent: equity this far below its peak; stays halted until a
  person resumes trading (the peak then restarts from the current equity).
- max_daily_loss_percent: equity this far below the day's opening equity
  (UTC days); lifted automatically when the next day starts.
- max_consecutive_losses: this many losing round trips in a row; lifted after
  `cooldown_candles` further candles.
A halt blocks entries only: open positions may still be closed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

DRAWDOWN = "max_drawdown_percent"
DAILY_LOSS = "max_daily_loss_percent"
LOSING_STREAK = "max_consecutive_losses"
RISK = "risk"
HUNDRED = Decimal(100)
PERCENT_QUANTUM = Decimal("0.0001")


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_daily_loss_percent: Decimal
    max_drawdown_percent: Decimal
    max_consecutive_losses: int
    cooldown_candles: int


class RiskBreach(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    reason: str
    metrics: dict[str, str]


class RiskMonitor:
    """Follows equity and closed trades, candle by candle; decides halts and automatic resumes."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.peak: Decimal | None = None
        self.day: date | None = None
        self.day_open: Decimal = Decimal(0)
        self.equity: Decimal = Decimal(0)
        self.losing_streak = 0
        self.candles_since_halt = 0
        self.halt_day: date | None = None

    def observe(self, at: datetime, equity: Decimal) -> None:
        """Equity marked at a candle's close."""
        if self.day != at.date():
            self.day, self.day_open = at.date(), (self.equity if self.peak is not None else equity)
        self.peak = equity if self.peak is None else max(self.peak, equity)
        self.equity = equity
        self.candles_since_halt += 1

    def record_round_trip(self, net_pnl: Decimal) -> None:
        self.losing_streak = self.losing_streak + 1 if net_pnl < 0 else 0

    def breach(self) -> RiskBreach | None:
        drawdown = self.percent_below(self.peak)
        if drawdown >= self.limits.max_drawdown_percent:
            return self._breach(DRAWDOWN, drawdown, self.limits.max_drawdown_percent, peak=self.peak)
        daily_loss = self.percent_below(self.day_open)
        if daily_loss >= self.limits.max_daily_loss_percent:
            return self._breach(DAILY_LOSS, daily_loss, self.limits.max_daily_loss_percent, day_open=self.day_open)
        if self.losing_streak >= self.limits.max_consecutive_losses:
            return RiskBreach(
                rule=LOSING_STREAK,
                reason=f"{self.losing_streak} losing trades in a row (limit {self.limits.max_consecutive_losses})",
                metrics={"losing_streak": str(self.losing_streak), "equity": str(self.equity)},
            )
        return None

    def may_resume(self, halted_by: str) -> str | None:
        """The reason an automatic resume is due for a risk halt, or None."""
        if halted_by == DAILY_LOSS and self.day != self.halt_day:
            return "a new trading day started"
        if halted_by == LOSING_STREAK and self.candles_since_halt >= self.limits.cooldown_candles:
            return f"cooldown of {self.limits.cooldown_candles} candles is over"
        return None

    def halted(self) -> None:
        self.candles_since_halt = 0
        self.halt_day = self.day

    def resumed(self) -> None:
        self.peak = self.equity
        self.losing_streak = 0

    def percent_below(self, reference: Decimal | None) -> Decimal:
        if not reference or reference <= 0:
            return Decimal(0)
        return ((reference - self.equity) / reference * HUNDRED).quantize(PERCENT_QUANTUM)

    def _breach(self, rule: str, measured: Decimal, limit: Decimal, **reference: Decimal | None) -> RiskBreach:
        name = "drawdown_percent" if rule == DRAWDOWN else "daily_loss_percent"
        return RiskBreach(
            rule=rule,
            reason=f"{name.replace('_', ' ')} {measured} reached the limit {limit}",
            metrics={name: str(measured), "limit": str(limit), "equity": str(self.equity),
                     **{k: str(v) for k, v in reference.items()}},
        )
