"""Value objects shared by the aggregates, the strategy and the predictors.

Money, prices and quantities are `Decimal`; times are timezone-aware UTC.
Structs are frozen msgspec structs so they cross every boundary (events,
API, files) with their types intact.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from functools import cache

import msgspec

from domain.errors import InvalidValue


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(str, Enum):
    MARKET = "market"


class Prediction(str, Enum):
    UP = "up"
    DOWN = "down"
    HOLD = "hold"


_TIMEFRAME_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


@cache
def timeframe_seconds(timeframe: str) -> int:
    """`"5m"` -> 300. Raises InvalidValue naming the timeframe when malformed."""
    unit = timeframe[-1:]
    count = timeframe[:-1]
    if unit not in _TIMEFRAME_UNITS or not count.isdigit() or int(count) <= 0:
        raise InvalidValue(
            "timeframe", timeframe, "expected a positive count and a unit m/h/d/w, e.g. 5m"
        )
    return int(count) * _TIMEFRAME_UNITS[unit]


@cache
def timeframe_delta(timeframe: str) -> timedelta:
    return timedelta(seconds=timeframe_seconds(timeframe))


def require_utc(field: str, value: datetime) -> datetime:
    """Reject naive datetimes; normalise any aware one to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(field, value, "expected a timezone-aware UTC datetime")
    return value.astimezone(timezone.utc)


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
        """Validate the OHLC relations; return self so calls can chain."""
        require_utc("open_time", self.open_time)
        for name in ("open", "high", "low", "close"):
            value = getattr(self, name)
            if not value.is_finite() or value <= 0:
                raise InvalidValue(name, value, "expected a positive finite price")
        if not self.volume.is_finite() or self.volume < 0:
            raise InvalidValue("volume", self.volume, "expected a non-negative volume")
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


class JournalLine(msgspec.Struct, frozen=True, kw_only=True):
    """One leg of a double-entry posting: positive debit, negative credit."""

    account: str
    amount: Decimal
