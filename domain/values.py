"""Value objects shared by the aggregates, the strategy and the predictors.

Money, prices and quantities are `Decimal`; times are timezone-aware UTC.
Structs are frozen msgspec structs so they cross every boundary (events,
API, files) with their types intact.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from functools import cache

import msgspec

from tradeledger.domain.errors import InvalidValue


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(str, Enum):
    MARKET = "market"
    LIMIT = "limit"  # fills only at its limit price or better (docs/exits.md)
    STOP = "stop"  # a sell stop: fills once the price falls to its level, at the level or the lower open


class Prediction(str, Enum):
    UP = "up"
    DOWN = "down"
    HOLD = "hold"


_TIMEFRAME_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIMEFRAME = re.compile(r"([0-9]{1,9})([mhdw])")  # ASCII digits; nine of them already exceed a year
MAX_TIMEFRAME_SECONDS = 365 * 86400
TIMEFRAME_EXPECTED = "a positive count and a unit m/h/d/w, at most a year (365d), e.g. 5m"

# The range a candle may take. Prices: the paper broker rounds fill prices to 10 decimal places
# and the ledger computes with 28 significant digits; from 1E-8 a fill price keeps 3 significant
# digits, below 1E+12 it keeps all 10 places. Volumes only feed float features.
MIN_PRICE, MAX_PRICE = Decimal("1E-8"), Decimal("1E+12")  # MIN_PRICE <= price < MAX_PRICE
MIN_VOLUME, MAX_VOLUME = Decimal("1E-30"), Decimal("1E+31")  # 0 or MIN_VOLUME <= volume < MAX_VOLUME
PRICE_FIELDS = ("open", "high", "low", "close")
EARLIEST_OPEN = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_OPEN = datetime(2200, 1, 1, tzinfo=timezone.utc)  # open times are before it


@cache
def timeframe_seconds(timeframe: str) -> int:
    """`"5m"` -> 300. Raises InvalidValue naming the timeframe when malformed or above a year."""
    match = _TIMEFRAME.fullmatch(timeframe)
    seconds = int(match[1]) * _TIMEFRAME_UNITS[match[2]] if match else 0
    if not 0 < seconds <= MAX_TIMEFRAME_SECONDS:
        raise InvalidValue("timeframe", timeframe, f"expected {TIMEFRAME_EXPECTED}")
    return seconds


@cache
def timeframe_delta(timeframe: str) -> timedelta:
    return timedelta(seconds=timeframe_seconds(timeframe))


def require_utc(field: str, value: datetime) -> datetime:
    """Reject naive datetimes; normalise any aware one to UTC."""
    if value.tzinfo is timezone.utc:  # the usual case: nothing to check or convert
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(field, value, "expected a timezone-aware UTC datetime")
    return value.astimezone(timezone.utc)


def require_open_time(field: str, value: datetime) -> datetime:
    """An aware time from EARLIEST_OPEN up to (not including) LATEST_OPEN, in UTC."""
    value = require_utc(field, value)
    if not EARLIEST_OPEN <= value < LATEST_OPEN:
        raise InvalidValue(field, value.isoformat(), "is outside 1970-01-01 to 2200-01-01 (UTC)")
    return value


class Candle(msgspec.Struct, frozen=True, kw_only=True):
    """One closed OHLCV candle. `open_time` is the start of the interval."""

    symbol: str
    timeframe: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def close_time(self) -> datetime:
        return self.open_time + timeframe_delta(self.timeframe)

    def check(self) -> Candle:
        """Validate the ranges and the OHLC relations; return self so calls can chain."""
        require_open_time("open_time", self.open_time)
        timeframe_seconds(self.timeframe)
        o, h, low, c, v = self.open, self.high, self.low, self.close, self.volume
        # Every rule below at once (low and high in range bound the others through the OHLC relations): a
        # candle runs through this once per tick. Only a candle that breaks one is named rule by rule.
        if (o.is_finite() and h.is_finite() and low.is_finite() and c.is_finite() and v.is_finite()
                and MIN_PRICE <= low <= o <= h < MAX_PRICE and low <= c <= h
                and (v.is_zero() or MIN_VOLUME <= v < MAX_VOLUME)):
            return self
        for name, value in zip(PRICE_FIELDS, (o, h, low, c)):
            if not (value.is_finite() and MIN_PRICE <= value < MAX_PRICE):
                raise InvalidValue(name, value, "expected a price from 1E-8 up to (not including) 1E+12")
        volume = self.volume
        if not (volume.is_finite() and (volume.is_zero() or MIN_VOLUME <= volume < MAX_VOLUME)):
            raise InvalidValue("volume", volume, "expected 0 or a volume from 1E-30 up to (not including) 1E+31")
        if self.high < self.low:
            raise InvalidValue("high", self.high, f"below low {self.low}")
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise InvalidValue("open/close", (self.open, self.close), "outside [low, high]")
        return self


class MemberPrediction(msgspec.Struct, frozen=True, kw_only=True):
    """One ensemble member's vote, recorded for the auditor."""

    name: str
    prediction: Prediction
    confidence: float


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What a predictor concluded from the features of one candle."""

    prediction: Prediction
    confidence: float
    model_name: str
    model_version: str
    members: tuple[MemberPrediction, ...] = ()
    error: str = ""  # a user strategy that failed on this candle (so the decision is hold): what went wrong


class JournalLine(msgspec.Struct, frozen=True, kw_only=True):
    """One leg of a double-entry posting: positive debit, negative credit."""

    account: str
    amount: Decimal
