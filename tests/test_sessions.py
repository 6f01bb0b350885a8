"""Sessions models: which missing candles are gaps for markets that close (weekly, exchange calendars, auto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import exchange_calendars
import pytest

from tradeledger.adapters.calendars import CalendarError, ExchangeSessions, infer_sessions, sessions_for
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.quality import Gap, QualityReport
from tradeledger.domain.features import FeatureEngine
from tradeledger.domain.sessions import ALWAYS_OPEN, DAY, WeeklySessions, parse_weekly
from tradeledger.domain.values import Candle
from tests.conftest import CANDLES

HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def candle(open_time: datetime, timeframe: str = "1d") -> Candle:
    one = Decimal(1)
    return Candle(symbol="GOOG", timeframe=timeframe, open_time=open_time, open=one, high=one, low=one, close=one,
                  volume=one)


@pytest.mark.parametrize("text", ["Mon-Fri", "Mon-Fri 14:30-21:00", "Sun-Thu 23:00-05:00", "Mon,Wed,Fri",
                                  "Mon-Fri 01:30-04:00,05:00-08:00", "Fri-Mon 22:00-23:30,00:30-03:00"])
def test_weekly_sessions_read_back_as_written(text: str) -> None:
    sessions = parse_weekly(text)
    assert sessions is not None and sessions.name == text
    assert parse_weekly(sessions.name).hours == sessions.hours


@pytest.mark.parametrize("text", ["24/7", "XNYS", "Mon-Funday", "mon-fri", "Mon-Fri 9:00-17:00"])
def test_other_values_are_not_weekly_sessions(text: str) -> None:
    assert parse_weekly(text) is None


def test_a_weekend_is_no_gap_for_weekday_sessions_but_a_missing_weekday_is() -> None:
    weekdays = parse_weekly("Mon-Fri")
    friday, monday, tuesday = at(2024, 1, 5), at(2024, 1, 8), at(2024, 1, 9)
    assert ALWAYS_OPEN.missing(friday, monday, DAY) == 2
    assert weekdays.missing(friday, monday, DAY) == 0
    assert weekdays.missing(friday, tuesday, DAY) == 1


def test_intraday_slots_count_from_each_sessions_open() -> None:
    hours = parse_weekly("Mon-Fri 14:30-21:00")
    half = 30 * MINUTE
    last_friday, first_monday = at(2024, 1, 5, 20, 30), at(2024, 1, 8, 14, 30)
    assert hours.missing(last_friday, first_monday, half) == 0
    assert hours.missing(last_friday, first_monday + half, half) == 1  # Monday's opening candle is missing
    assert hours.missing(at(2024, 1, 5, 19, 30), first_monday, half) == 2  # Friday's last two
    assert hours.missing(at(2024, 1, 5, 15, 0), at(2024, 1, 5, 16, 0), half) == 1


def test_a_session_across_midnight_belongs_to_the_day_it_opens() -> None:
    night = parse_weekly("Sun-Thu 23:00-05:00")
    thursday_last, sunday_first = at(2024, 1, 12, 4, 0), at(2024, 1, 14, 23, 0)  # Friday 04:00 is Thursday's
    assert night.missing(thursday_last, sunday_first, HOUR) == 0
    assert night.missing(at(2024, 1, 14, 23, 0), at(2024, 1, 15, 2, 0), HOUR) == 2


def test_the_exchange_calendar_knows_holidays_early_closes_and_lunch_breaks() -> None:
    nyse = sessions_for("XNYS")
    assert isinstance(nyse, ExchangeSessions)
    # Thanksgiving (Thu 2023-11-23) is closed; Friday 24th closes early at 13:00 New York (18:00 UTC).
    assert nyse.missing(at(2023, 11, 22), at(2023, 11, 24), DAY) == 0
    assert nyse.missing(at(2023, 11, 22), at(2023, 11, 27), DAY) == 1
    assert nyse.missing(at(2023, 11, 22, 14, 30), at(2023, 11, 24, 14, 30), DAY) == 0  # stamped at the open
    assert nyse.missing(at(2023, 11, 24, 17, 30), at(2023, 11, 27, 14, 30), HOUR) == 0
    assert nyse.missing(at(2023, 11, 24, 16, 30), at(2023, 11, 27, 15, 30), HOUR) == 2
    hong_kong = sessions_for("XHKG")  # lunch 12:00-13:00 Hong Kong, 04:00-05:00 UTC
    assert hong_kong.missing(at(2024, 3, 4, 3, 30), at(2024, 3, 4, 5, 0), 30 * MINUTE) == 0
    assert hong_kong.missing(at(2024, 3, 4, 3, 0), at(2024, 3, 4, 5, 30), 30 * MINUTE) == 2


def test_an_unknown_calendar_names_the_setting() -> None:
    with pytest.raises(CalendarError, match="market.calendar: unknown calendar 'XNYZ'"):
        sessions_for("XNYZ")


def test_auto_infers_weekdays_and_the_hours_every_season_trades() -> None:
    hourly = exchange_candles("XNYS", "2023-01-01", "2023-12-31", HOUR, "1h")  # 13:30 or 14:30 UTC by DST
    inferred = infer_sessions(hourly, HOUR)
    # 13:30 (summer) and 20:30 (winter) are not traded all year, so they are never expected.
    assert isinstance(inferred, WeeklySessions) and inferred.name == "Mon-Fri 14:30-20:30"
    pairs = list(zip(hourly, hourly[1:]))
    # What auto cannot know: 9 weekday holidays after the first candle (6 hours each) and the hours
    # after the early closes of July 3 (3) and November 24 (2). The exchange calendar knows them.
    assert sum(inferred.missing(a.open_time, b.open_time, HOUR) for a, b in pairs) == 9 * 6 + 3 + 2
    assert sum(sessions_for("XNYS").missing(a.open_time, b.open_time, HOUR) for a, b in pairs) == 0
    daily = [candle(moment) for moment in exchange_calendars.get_calendar("XNYS").sessions_in_range(
        "2023-01-01", "2023-12-31").to_pydatetime()]
    assert infer_sessions([candle(c.open_time.replace(tzinfo=UTC)) for c in daily], DAY).name == "Mon-Fri"


@pytest.mark.parametrize("name", sorted(path.name for path in CANDLES.iterdir()))
def test_auto_on_every_crypto_file_is_24_7_with_the_same_gaps(name: str) -> None:
    """Short (XRP/ETH: two and a half days) and gappy (UNITTEST: 538 gaps) files never look like closing."""
    data = load_candles(CANDLES / name, calendar="auto")
    assert data.report.calendar == "24/7" and data.inferred is not None and "inferred 24/7" in data.inferred
    assert data.report.gaps == load_candles(CANDLES / name).report.gaps


def exchange_candles(calendar: str, start: str, end: str, step: timedelta, timeframe: str) -> list[Candle]:
    """A candle every `step` of every real trading period of an exchange calendar, from each period's open."""
    schedule = exchange_calendars.get_calendar(calendar).schedule.loc[start:end]
    periods = []
    for row in schedule.itertuples():
        if row.break_start == row.break_start:  # not NaT: a lunch break
            periods += [(row.open, row.break_start), (row.break_end, row.close)]
        else:
            periods.append((row.open, row.close))
    candles = []
    for opened, closed in periods:
        moment = opened.to_pydatetime().astimezone(UTC)
        while moment < closed.to_pydatetime():
            candles.append(candle(moment, timeframe))
            moment += step
    return candles


def test_auto_infers_a_lunch_break_and_a_session_across_midnight() -> None:
    half = 30 * MINUTE
    hong_kong = exchange_candles("XHKG", "2023-01-01", "2023-12-31", half, "30m")
    assert infer_sessions(hong_kong, half).name == "Mon-Fri 01:30-04:00,05:00-08:00"
    night = parse_weekly("Sun-Thu 23:00-05:00")
    start = at(2024, 1, 7, 23)
    moments = [start + n * HOUR for n in range(24 * 28)]
    candles = [candle(moment, "1h") for moment in moments if any(a <= moment < b for a, b in night.periods(
        moment, moment + HOUR))]
    assert infer_sessions(candles, HOUR).name == "Sun-Thu 23:00-05:00"


def test_data_quality_counts_only_the_missing_sessions() -> None:
    nyse = sessions_for("XNYS")
    # Over Thanksgiving and Christmas, which are no gaps.
    sessions = exchange_calendars.get_calendar("XNYS").sessions_in_range("2023-10-02", "2024-01-31")
    days = [moment.replace(tzinfo=UTC) for moment in sessions.to_pydatetime()]
    kept = days[:30] + days[31:]  # one real session missing
    by_calendar, around_the_clock = FeatureEngine(sessions=nyse), FeatureEngine()
    qualities = [by_calendar.update(candle(moment)).data_quality for moment in kept]
    assert qualities.count(1.0) == len(kept) - 19 and min(qualities) == 20 / 21  # 19 windows span the gap
    weekends_missing = [around_the_clock.update(candle(moment)).data_quality for moment in kept]
    assert max(weekends_missing[20:]) < 0.9  # 24/7 counts every weekend: never actionable


def test_the_gap_report_is_one_line_however_many_gaps() -> None:
    report = load_candles(CANDLES / "UNITTEST_BTC-1m.csv").report
    largest = max(report.gaps, key=lambda gap: gap.missing_count)
    lines = report.summary().splitlines()
    assert lines == [
        "13681 rows, 538 gaps (717 missing candles), 0 duplicates, 0 out of order, 0 invalid",
        f"gaps against 24/7 sessions: largest {largest}; first "
        + ", ".join(str(gap) for gap in report.gaps[:3]) + "; --verbose lists all 538",
    ]
    verbose = report.summary(verbose=True).splitlines()
    assert len(verbose) == 1 + 538 and verbose[1].startswith("gap: 6 missing between 2017-11-04T23:07:00+00:00")


def test_row_problems_are_capped_without_verbose() -> None:
    report = QualityReport(rows=40, gaps=[Gap(at(2024, 1, 1), at(2024, 1, 1, 0, 10), 1)], duplicates=list(range(1, 31)),
                           out_of_order=[], invalid=[])
    lines = report.summary().splitlines()
    assert len(lines) == 2 + 10 + 1 and lines[-1] == "... and 20 more rows (--verbose lists every row)"
    assert len(report.summary(verbose=True).splitlines()) == 2 + 30
