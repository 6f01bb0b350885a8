"""The data-quality report of a market data file: gaps against the market's sessions, and bad rows.

`summary()` stays readable on a file with hundreds of gaps: one line of
counts, one line on the gaps (the largest with its time, the first few), and
the first rows with a problem; `summary(verbose=True)` lists every gap and
every row, as the JSON form of the report always does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import msgspec

from tradeledger.domain.sessions import ALWAYS_OPEN, Sessions
from tradeledger.domain.values import Candle

FIRST_GAPS = 3  # shown in the one-line gap summary
FIRST_ROWS = 10  # row problems shown without --verbose


class Gap(msgspec.Struct, frozen=True):
    after_open_time: datetime
    next_open_time: datetime
    missing_count: int

    def __str__(self) -> str:
        return f"{self.missing_count} missing after {self.after_open_time.isoformat()}"


class InvalidRow(NamedTuple):
    row: int
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field} {self.value} {self.reason}"


class QualityReport(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    gaps: list[Gap]
    duplicates: list[int]
    out_of_order: list[int]
    invalid: list[InvalidRow]
    calendar: str = ALWAYS_OPEN.name  # the sessions the gaps are counted against

    @property
    def missing_candles(self) -> int:
        return sum(gap.missing_count for gap in self.gaps)

    def summary(self, *, verbose: bool = False) -> str:
        head = (
            f"{self.rows} rows, {len(self.gaps)} gaps ({self.missing_candles} missing candles), "
            f"{len(self.duplicates)} duplicates, {len(self.out_of_order)} out of order, "
            f"{len(self.invalid)} invalid"
        )
        gaps = [f"gap: {gap.missing_count} missing between {gap.after_open_time.isoformat()} "
                f"and {gap.next_open_time.isoformat()}" for gap in self.gaps] if verbose else [self.gap_line()]
        rows = self.row_lines()
        shown = rows if verbose or len(rows) <= FIRST_ROWS else [
            *rows[:FIRST_ROWS], f"... and {len(rows) - FIRST_ROWS} more rows (--verbose lists every row)"]
        return "\n".join(line for line in [head, *gaps, *shown] if line)

    def gap_line(self) -> str:
        """One line however many gaps: the largest (the first of equals) and the first few."""
        if not self.gaps:
            return ""
        largest = max(self.gaps, key=lambda gap: gap.missing_count)
        first = ", ".join(str(gap) for gap in self.gaps[:FIRST_GAPS])
        more = f"; --verbose lists all {len(self.gaps)}" if len(self.gaps) > FIRST_GAPS else ""
        return f"gaps against {self.calendar} sessions: largest {largest}; first {first}{more}"

    def row_lines(self) -> list[str]:
        by_row = sorted(
            [(entry.row, str(entry)) for entry in self.invalid]
            + [(row, f"row {row}: duplicate timestamp, excluded") for row in self.duplicates]
            + [(row, f"row {row}: out of order, kept in time order") for row in self.out_of_order]
        )
        return [line for _, line in by_row]


def find_gaps(candles: Sequence[Candle], step: timedelta, sessions: Sessions) -> list[Gap]:
    """Consecutive candles with expected candles missing between them (the market was open)."""
    times = [candle.open_time for candle in candles]
    gaps = (Gap(a, b, sessions.missing(a, b, step)) for a, b in zip(times, times[1:]) if b - a != step)
    return [gap for gap in gaps if gap.missing_count]
