"""When a market is open, so that a closed market is never mistaken for missing data.

A gap is a candle slot the market was open for that has no candle. A crypto
market never closes (`ALWAYS_OPEN`); a stock market closes at night, at
weekends and on holidays, and a jump across a closed span is no gap. A
`Sessions` model answers one question: how many candles are missing between
two consecutive candle open times. The feature engine (`data_quality`), the
trader (`gap_before:N` flags) and the file loader (the gap report) all ask
the same model, so they always agree.

`SessionTable` counts against trading periods:
- below one day, an expected candle opens at `period open + k * step`
  before the period's close (k >= 0), so each session's first candle is
  expected at its open;
- at one day and longer, each slot `previous + k * step` between the two
  candles is expected when a session falls on it.

`WeeklySessions` is a market that opens on fixed weekdays, at fixed UTC hours:
what `market.calendar = auto` infers from a file, written as `Mon-Fri` or
`Mon-Fri 14:30-21:00` (a period ending at or before its start crosses
midnight; the weekday is that of its start). Exchange calendars with holidays
are built on the same table by `adapters.calendars`.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Protocol

DAY = timedelta(days=1)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Period = tuple[datetime, datetime]
Hours = tuple[tuple[timedelta, timedelta], ...]  # (start, end) offsets from a session day's UTC midnight

_DAYS = "|".join(WEEKDAYS)
_DAY_RANGE = rf"(?:{_DAYS})(?:-(?:{_DAYS}))?"
_HOURS = r"\d{2}:\d{2}-\d{2}:\d{2}"
_WEEKLY = re.compile(rf"^({_DAY_RANGE}(?:,{_DAY_RANGE})*)(?: ({_HOURS}(?:,{_HOURS})*))?$")


class Sessions(Protocol):
    @property
    def name(self) -> str:
        """The `market.calendar` value that builds this model."""
        ...

    def missing(self, previous: datetime, current: datetime, step: timedelta) -> int:
        """Expected candles with no candle between two consecutive open times."""
        ...


def missing_candles(previous: datetime, current: datetime, step: timedelta) -> int:
    """Candle slots with no candle between two consecutive open times, for a market that never closes.

    Any spacing beyond one timeframe counts as at least one missing candle,
    so an irregular (misaligned) spacing is never mistaken for a clean one.
    """
    spacing = current - previous
    if spacing == step:  # the usual case, without a division
        return 0
    return max(0, math.ceil(spacing / step) - 1)


class AlwaysOpen:
    name = "24/7"

    def missing(self, previous: datetime, current: datetime, step: timedelta) -> int:
        return missing_candles(previous, current, step)


ALWAYS_OPEN = AlwaysOpen()


class SessionTable(ABC):
    """Missing candles counted against trading periods; a subclass says when the market trades."""

    name: str

    @abstractmethod
    def periods(self, start: datetime, end: datetime) -> Iterator[Period]:
        """The trading periods (open, close) that overlap (start, end), in time order."""

    @abstractmethod
    def trades_between(self, start: datetime, end: datetime) -> bool:
        """Whether a (daily) session falls on [start, end)."""

    def missing(self, previous: datetime, current: datetime, step: timedelta) -> int:
        if step >= DAY:
            slots = range(1, missing_candles(previous, current, step) + 1)
            return sum(1 for k in slots if self.trades_between(previous + k * step, previous + (k + 1) * step))
        return sum(_slots_inside(period, step, previous, current) for period in self.periods(previous, current))


def _slots_inside(period: Period, step: timedelta, previous: datetime, current: datetime) -> int:
    """Candle slots `open + k * step` (k >= 0, before the close) strictly between previous and current."""
    opened, closed = period
    first = max(0, (previous - opened) // step + 1)
    end = min(-((opened - closed) // step), -((opened - current) // step))  # ceiling divisions
    return max(0, end - first)


class WeeklySessions(SessionTable):
    def __init__(self, weekdays: frozenset[int], hours: Hours = ((timedelta(0), DAY),)) -> None:
        self.weekdays = weekdays
        self.hours = hours
        self.name = _format_weekly(weekdays, hours)

    def periods(self, start: datetime, end: datetime) -> Iterator[Period]:
        day = datetime.combine(start.date(), time(), UTC) - 2 * DAY  # an earlier day's period may reach into start
        while day < end:
            if day.weekday() in self.weekdays:
                for begin, finish in self.hours:
                    if day + finish > start and day + begin < end:
                        yield day + begin, day + finish
            day += DAY

    def trades_between(self, start: datetime, end: datetime) -> bool:
        days = (end.date() - start.date()).days
        return any((start.date() + timedelta(days=n)).weekday() in self.weekdays for n in range(days))


def parse_weekly(text: str) -> WeeklySessions | None:
    """`Mon-Fri`, `Mon,Wed,Fri 09:00-17:30`, `Sun-Thu 22:00-05:00` (UTC); None when `text` is not that form."""
    match = _WEEKLY.match(text)
    if match is None:
        return None
    weekdays = frozenset(day for part in match.group(1).split(",") for day in _day_range(part))
    if match.group(2) is None:
        return WeeklySessions(weekdays)
    hours: list[tuple[timedelta, timedelta]] = []
    for part in match.group(2).split(","):
        begin, finish = _period(part)
        if hours and begin < hours[-1][0]:  # periods are in order: one that starts earlier is the next day's
            begin, finish = begin + DAY, finish + DAY
        hours.append((begin, finish))
    return WeeklySessions(weekdays, tuple(hours))


def _day_range(part: str) -> list[int]:
    first, _, last = part.partition("-")
    start, stop = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
    return [(start + n) % 7 for n in range((stop - start) % 7 + 1)]


def _period(part: str) -> tuple[timedelta, timedelta]:
    begin, finish = (_clock(text) for text in part.split("-"))
    return begin, finish if finish > begin else finish + DAY


def _clock(text: str) -> timedelta:
    hours, minutes = (int(n) for n in text.split(":"))
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text} is not a time of day")
    return timedelta(hours=hours, minutes=minutes)


def _format_weekly(weekdays: frozenset[int], hours: Hours) -> str:
    days = ",".join(_runs(weekdays))
    if hours == ((timedelta(0), DAY),):
        return days
    return f"{days} " + ",".join(f"{_hhmm(begin)}-{_hhmm(finish)}" for begin, finish in hours)


def _runs(weekdays: frozenset[int]) -> list[str]:
    """Consecutive weekdays as ranges, each starting on a day whose eve is closed (`Sun-Thu`)."""
    if len(weekdays) == 7:
        return ["Mon-Sun"]
    runs = []
    for first in sorted(day for day in weekdays if (day - 1) % 7 not in weekdays):
        last = first
        while (last + 1) % 7 in weekdays:
            last = (last + 1) % 7
        runs.append(WEEKDAYS[first] if last == first else f"{WEEKDAYS[first]}-{WEEKDAYS[last]}")
    return runs


def _hhmm(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
