"""`market.calendar`: the sessions model that decides which missing candles are gaps.

- `24/7` (the default): a market that never closes, as crypto exchanges are;
- an exchange calendar of the `exchange-calendars` package (`XNYS`, `XLON`,
  `XHKG`, ...): its sessions with holidays, early closes and lunch breaks;
- weekly sessions such as `Mon-Fri` or `Mon-Fri 14:30-21:00` (UTC; see
  `domain.sessions`);
- `auto`: weekly sessions inferred from the market data (`infer_sessions`);
  the inferred value is what a run records and replays, so `auto` never
  reaches a decision. Without data to infer from (the synthetic market) it is
  `24/7`.

A daily candle of an exchange belongs to the session of the exchange's local
date six hours after its open time, so dates stamped at midnight UTC, at local
midnight or at the session's open all land on their own session. Candles more
than a day outside the calendar's range (from the first of
`CALENDAR_STARTS` the calendar accepts to a year from now) count every slot
as expected, as 24/7 does.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tradeledger.adapters.errors import Refused
from tradeledger.domain.sessions import ALWAYS_OPEN, DAY, Hours, Period, Sessions, SessionTable, WeeklySessions, parse_weekly
from tradeledger.domain.values import Candle

if TYPE_CHECKING:
    import pandas  # exchange-calendars' schedules; imported with it, only when a calendar is built

AUTO = "auto"
FULL_DAY: Hours = ((timedelta(0), DAY),)
# exchange-calendars refuses a start before a calendar's history: the first of these it accepts is used.
CALENDAR_STARTS = ("1990-01-01", "2000-01-01", "2010-01-01", "2020-01-01")
DAILY_LABEL_SHIFT = timedelta(hours=6)
# auto: a time of day (or a weekday, per date of it) with less than this share of the busiest one's
# candles is closed: missing data elsewhere never looks closed, a stray Saturday candle never open;
CLOSED_SHARE = 0.2
# at the edges of a day's trading, a time of day is expected only with this share: the hour that a
# daylight-saving shift moves in and out of the UTC day is not.
USUAL_SHARE = 0.8


class CalendarError(Refused, ValueError):
    pass


@lru_cache(maxsize=16)
def sessions_for(calendar: str) -> Sessions:
    """The sessions model a `market.calendar` value names (`auto` here is 24/7: nothing to infer from)."""
    if calendar in (ALWAYS_OPEN.name, AUTO):
        return ALWAYS_OPEN
    return parse_weekly(calendar) or ExchangeSessions(calendar)


def resolve_calendar(calendar: str, candles: Sequence[Candle], step: timedelta) -> tuple[Sessions, str | None]:
    """The sessions for `market.calendar` on these candles, and what `auto` inferred (None when not inferred)."""
    if calendar != AUTO or not candles:
        return sessions_for(calendar), None
    sessions = infer_sessions(candles, step)
    return sessions, f"market.calendar auto: inferred {sessions.name} (UTC) from {len(candles)} candles"


class ExchangeSessions(SessionTable):
    """The sessions of one exchange-calendars calendar, as plain lists searched by bisection."""

    def __init__(self, name: str) -> None:
        schedule, zone = _schedule(name)
        self.name = name
        self.zone = ZoneInfo(zone)
        self.labels: list[date] = [label.date() for label in schedule.index]
        self.opens: list[datetime] = []
        self.closes: list[datetime] = []
        for row in schedule.itertuples():
            for opened, closed in _trading_periods(row):
                self.opens.append(opened)
                self.closes.append(closed)

    def missing(self, previous: datetime, current: datetime, step: timedelta) -> int:
        if previous < self.opens[0] - DAY or current > self.closes[-1] + DAY:
            return ALWAYS_OPEN.missing(previous, current, step)
        return super().missing(previous, current, step)

    def periods(self, start: datetime, end: datetime) -> Iterator[Period]:
        index = bisect_right(self.closes, start)
        while index < len(self.opens) and self.opens[index] < end:
            yield self.opens[index], self.closes[index]
            index += 1

    def trades_between(self, start: datetime, end: datetime) -> bool:
        return bisect_left(self.labels, self.label(end)) > bisect_left(self.labels, self.label(start))

    def label(self, moment: datetime) -> date:
        return (moment.astimezone(self.zone) + DAILY_LABEL_SHIFT).date()


def _schedule(name: str) -> tuple[pandas.DataFrame, str]:
    import exchange_calendars  # about a second to import: only when an exchange calendar is used

    if name not in exchange_calendars.get_calendar_names():
        raise CalendarError(f"market.calendar: unknown calendar {name!r}; expected 24/7, auto, weekly sessions "
                            "such as 'Mon-Fri 14:30-21:00' or an exchange-calendars name such as XNYS")
    problem: Exception | None = None
    for start in CALENDAR_STARTS:
        try:
            calendar = exchange_calendars.get_calendar(name, start=start)
            return calendar.schedule, str(calendar.tz)
        except (ValueError, NotImplementedError) as error:  # history starts later, or the calendar is broken
            problem = error
    raise CalendarError(f"market.calendar: exchange-calendars cannot build {name}: {problem}")


def _trading_periods(row: Any) -> list[Period]:  # a schedule row: open, break_start, break_end, close
    opened, closed = _utc(row.open), _utc(row.close)
    if row.break_start != row.break_start or row.break_end != row.break_end:  # NaT: no lunch break
        return [(opened, closed)]
    return [(opened, _utc(row.break_start)), (_utc(row.break_end), closed)]


def _utc(timestamp: pandas.Timestamp) -> datetime:
    return timestamp.to_pydatetime().astimezone(UTC)


def infer_sessions(candles: Sequence[Candle], step: timedelta) -> Sessions:
    """Weekly sessions from the candles' weekday pattern and, below one day, their daily hours."""
    times = [candle.open_time for candle in candles]
    hours = FULL_DAY if step >= DAY else _daily_hours(times, step)
    weekdays = _open_weekdays([moment - hours[0][0] for moment in times])  # a session is its opening day's
    if len(weekdays) == 7 and hours == FULL_DAY:
        return ALWAYS_OPEN
    return WeeklySessions(weekdays, hours)


def _open_weekdays(days: list[datetime]) -> frozenset[int]:
    """Closed: a weekday the data spans with few candles per date of it (a short file spans not every weekday)."""
    first, last = min(days).date(), max(days).date()
    spanned = Counter((first + timedelta(days=n)).weekday() for n in range((last - first).days + 1))
    per_date = {day: count / spanned[day] for day, count in Counter(moment.weekday() for moment in days).items()}
    busiest = max(per_date.values())
    return frozenset(day for day in range(7) if not spanned[day] or per_date.get(day, 0) >= CLOSED_SHARE * busiest)


def _daily_hours(times: list[datetime], step: timedelta) -> Hours:
    """The trading periods of a day: the times of day that are not closed, less the rarely traded ones at
    their edges (the hour a daylight-saving shift moves), in order from the one after the longest pause."""
    per_time = Counter(moment - datetime.combine(moment.date(), time(), UTC) for moment in times)
    busiest, base = max(per_time.values()), min(per_time) % step
    share = [per_time.get(base + k * step, 0) / busiest for k in range(DAY // step)]
    runs = [run for run in (_trimmed(share, run) for run in _open_runs(share)) if run[0] < run[1]]
    if not runs:
        return FULL_DAY
    size = len(share)
    pauses = [runs[(i + 1) % len(runs)][0] + (size if i == len(runs) - 1 else 0) - end
              for i, (_, end) in enumerate(runs)]
    after = (pauses.index(max(pauses)) + 1) % len(runs)
    ordered = runs[after:] + [(first + size, end + size) for first, end in runs[:after]]
    periods = [(base + first * step, base + end * step) for first, end in ordered]
    midnight = periods[0][0] // DAY * DAY  # of the session's day
    return tuple((begin - midnight, finish - midnight) for begin, finish in periods)


def _open_runs(share: list[float]) -> list[tuple[int, int]]:
    """Runs [first, end) of slots that are not closed, in order round the day from a closed slot (none: [])."""
    size = len(share)
    closed = [k for k in range(size) if share[k] < CLOSED_SHARE]
    runs: list[tuple[int, int]] = []
    for k in range(closed[0] + 1, closed[0] + size) if closed else ():
        if share[k % size] < CLOSED_SHARE:
            continue
        if runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    return runs


def _trimmed(share: list[float], run: tuple[int, int]) -> tuple[int, int]:
    first, end = run
    while first < end and share[first % len(share)] < USUAL_SHARE:
        first += 1
    while end > first and share[(end - 1) % len(share)] < USUAL_SHARE:
        end -= 1
    return first, end
