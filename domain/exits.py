"""Why a position is closed, and the exits that protect it (docs/exits.md).

Every sell records one of `EXIT_REASONS`. The protective exits are pure rules over
the entry and the candles since, so a replay exits exactly where the recorded run did:
- inside a candle (`intrabar`), against its low and high: the stop-loss and the
  trailing stop (sell stops) and the take-profit (a sell limit). A stop fills at
  its level, or at the open when the candle opened beyond it. When a stop and the
  take-profit both fall inside one candle the stop is assumed first: the candle
  does not say which came first, and assuming the loss is the conservative choice;
- at a close (`at_close`): the ROI table and the holding limit, sold at the next
  open as a signal exit is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import msgspec

from tradeledger.domain.values import Candle, OrderType

SIGNAL = "signal"  # the predictor said down
STOPLOSS = "stoploss"
TAKE_PROFIT = "take_profit"
TRAILING_STOP = "trailing_stop"
ROI = "roi"
MAX_HOLDING = "max_holding"
MAX_DRAWDOWN = "max_drawdown_percent"  # the risk rule's exit (domain.risk DRAWDOWN)
FORCE_EXIT = "force_exit"  # an operator asked (domain.control)

EXIT_REASONS = (SIGNAL, STOPLOSS, TAKE_PROFIT, TRAILING_STOP, ROI, MAX_HOLDING, MAX_DRAWDOWN, FORCE_EXIT)
HUNDRED = Decimal(100)
Price = Callable[[Decimal], Decimal]  # rounds a level to the market's price step


def recorded_reason(exit_reason: str | None, reason: str) -> str:
    """A sell's exit reason; a sell recorded before exit reasons were (exit_reason None) was either the
    drawdown rule's exit (its `reason` is the rule's name) or a signal exit."""
    if exit_reason is not None:
        return exit_reason
    return MAX_DRAWDOWN if reason == MAX_DRAWDOWN else SIGNAL


class Holding(msgspec.Struct, kw_only=True):
    """An open position as its exits see it: the entry fill, the highest close since, the closes seen."""

    entry_price: Decimal
    entered_at: datetime  # the open of the candle the entry filled at
    highest_close: Decimal  # starts at the entry price, so a trailing stop never starts below the entry's
    candles: int = 0  # closes seen since the entry, the entry's candle included
    # A limit entry filled inside its candle (below the open): part of that candle traded before the fill.
    filled_inside: bool = False

    def closed(self, candle: Candle) -> None:
        self.candles += 1
        self.highest_close = max(self.highest_close, candle.close)


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """An exit inside a candle: a sell `order_type` at `level` (the broker fills it at the level or the open)."""

    reason: str
    order_type: OrderType
    level: Decimal


class ExitRules(msgspec.Struct, frozen=True, kw_only=True):
    """The `exits.*` settings; None (and an empty table) leaves that exit off."""

    stoploss_percent: Decimal | None = None
    take_profit_percent: Decimal | None = None
    trailing_stop_percent: Decimal | None = None
    roi: dict[str, Decimal] | None = None  # minutes held -> minimum profit percent (Freqtrade's minimal_roi)
    max_holding_candles: int | None = None

    def stops(self, holding: Holding) -> list[tuple[str, Decimal]]:
        """The sell stops in force, highest first: a falling price reaches that one first (stop-loss on a tie)."""
        levels = []
        if self.stoploss_percent is not None:
            levels.append((STOPLOSS, holding.entry_price * (1 - self.stoploss_percent / HUNDRED)))
        if self.trailing_stop_percent is not None:
            levels.append((TRAILING_STOP, holding.highest_close * (1 - self.trailing_stop_percent / HUNDRED)))
        return sorted(levels, key=lambda item: -item[1])

    def intrabar(self, holding: Holding, candle: Candle, stop_price: Price, limit_price: Price) -> Trigger | None:
        """The exit this candle triggers. `stop_price`/`limit_price` round a level to the market's price step
        against the trader (a stop down, a take-profit up), so the level compared is the level filled at."""
        stop = next(iter(self.stops(holding)), None)
        stop_trigger = None if stop is None else Trigger(reason=stop[0], order_type=OrderType.STOP,
                                                         level=stop_price(stop[1]))
        # The entry candle of a fill inside it: its high may have come before the fill, so no take-profit there.
        no_take = self.take_profit_percent is None or (holding.filled_inside and candle.open_time == holding.entered_at)
        take = None if no_take else Trigger(
            reason=TAKE_PROFIT, order_type=OrderType.LIMIT,
            level=limit_price(holding.entry_price * (1 + self.take_profit_percent / HUNDRED)))
        # The open is the candle's first price: beyond a level there, that exit happened first.
        if stop_trigger is not None and candle.open <= stop_trigger.level:
            return stop_trigger
        if take is not None and candle.open >= take.level:
            return take
        # Inside the candle the order is unknown: the stop is assumed first (the conservative choice).
        if stop_trigger is not None and candle.low <= stop_trigger.level:
            return stop_trigger
        if take is not None and candle.high >= take.level:
            return take
        return None

    def at_close(self, holding: Holding, candle: Candle) -> str | None:
        """The exit reason at this close (after `holding.closed(candle)`), sold at the next open; or None."""
        if self.max_holding_candles is not None and holding.candles >= self.max_holding_candles:
            return MAX_HOLDING
        if self.roi and (target := self.roi_target(holding, candle)) is not None:
            profit = (candle.close / holding.entry_price - 1) * HUNDRED
            return ROI if profit >= target else None
        return None

    def roi_target(self, holding: Holding, candle: Candle) -> Decimal | None:
        """The minimum profit percent of the table's entry with the most minutes not above the minutes held."""
        held = (candle.close_time - holding.entered_at).total_seconds() / 60
        reached = [int(minutes) for minutes in (self.roi or {}) if int(minutes) <= held]
        return (self.roi or {})[str(max(reached))] if reached else None

