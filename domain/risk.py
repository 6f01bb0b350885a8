"""Risk rules: when the agent must stop opening positions, and when it may start again.

Rules and how each one ends (a measured value equal to the limit breaches it):
- max_drawdown_percent: equity this far below its peak; stays halted until a
  person resumes trading, and only that restarts the peak (from the current
  equity): automatic resumes of the other rules keep it. Checked at every
  close, also while another rule or a person has halted entries, so a halt of
  another rule is taken over by it. The trader then also closes the open
  positions unless `exit_on_drawdown` is off.
- max_daily_loss_percent: equity this far below the day's opening equity
  (UTC days); lifted automatically when the next day starts.
- max_consecutive_losses: this many losing round trips in a row; lifted after
  `cooldown_candles` further candles.
Apart from the drawdown exit, a halt blocks entries only: open positions may still be closed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

from tradeledger.domain.orders import RiskCheck

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
    exit_on_drawdown: bool = True


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

    def breach(self, halted_by: str | None) -> RiskBreach | None:
        """The rule this close breaches that is not already in force.

        While entries are halted (by `halted_by`) only the drawdown rule is still checked: it is the one
        that also closes positions and waits for a person, so it takes over any other halt.
        """
        if halted_by == DRAWDOWN:
            return None
        drawdown = self.percent_below(self.peak)
        if drawdown >= self.limits.max_drawdown_percent:
            return self._breach(DRAWDOWN, drawdown, self.limits.max_drawdown_percent, peak=self.peak)
        if halted_by is not None:
            return None
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

    def checks(self) -> tuple[RiskCheck, ...]:
        """Every rule's measured value at the last close against its limit, as an order records them."""
        limits = self.limits
        measured = ((DRAWDOWN, self.percent_below(self.peak), limits.max_drawdown_percent),
                    (DAILY_LOSS, self.percent_below(self.day_open), limits.max_daily_loss_percent),
                    (LOSING_STREAK, Decimal(self.losing_streak), Decimal(limits.max_consecutive_losses)))
        return tuple(RiskCheck(rule=rule, value=value, limit=limit, passed=value < limit)
                     for rule, value, limit in measured)

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

    def resumed(self, halted_by: str) -> None:
        """Trading resumed after a halt by `halted_by` (automatically, or by a person)."""
        if halted_by == DRAWDOWN:  # only a person lifts it: they accept the loss so far
            self.peak = self.equity
        self.losing_streak = 0

    def percent_below(self, reference: Decimal | None) -> Decimal:
        """Unrounded, so the limit is compared with the true value; the metrics show it to 4 places."""
        if not reference or reference <= 0:
            return Decimal(0)
        return (reference - self.equity) / reference * HUNDRED

    def _breach(self, rule: str, measured: Decimal, limit: Decimal, **reference: Decimal | None) -> RiskBreach:
        name = "drawdown_percent" if rule == DRAWDOWN else "daily_loss_percent"
        shown = measured.quantize(PERCENT_QUANTUM)
        return RiskBreach(
            rule=rule,
            reason=f"{name.replace('_', ' ')} {shown} reached the limit {limit}",
            metrics={name: str(shown), "limit": str(limit), "equity": str(self.equity),
                     **{k: str(v) for k, v in reference.items()}},
        )
