"""Point-in-time replay: fold a start of the log into fresh in-memory read models.

Three questions, three cuts, each a log position N; the answer is the fold of
every event at positions <= N, so a cut is always a history that happened (no
order without its account) and `--as-of T` is exactly `--position N`:

- `--position N`: N itself.
- `--as-of T` (business time): N is the last account or market event whose
  business time (the market time it is about) is <= T. Agent runs and gateways
  live on the wall clock, not the market's, so they do not move the cut.
- `--recorded-at T` (recorded time): N is the last event appended at wall time
  <= T: what the system held then.

A tick books the fill of the previous candle's order at this candle's open,
after this candle's close, so the log is not quite sorted by business time:
for T inside a candle that opened with a fill, the cut ends at that fill and
includes the candle's close that precedes it in the log.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from operator import attrgetter

from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.projections.fold import Projection, Recorded, apply_all
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.rows import MemoryTables
from tradeledger.projections.runner import PAGE_SIZE, EventFeed


LEDGER_EVENTS = (Account.Event, Market.Event)


class ReadModels:
    """Fresh read models in memory: every projection's fold over one MemoryTables."""

    def __init__(self, projections: Sequence[Projection] = PROJECTIONS) -> None:
        self.tables = MemoryTables()
        self.folds = [p.fold(self.tables) for p in projections]

    def apply(self, events: Sequence[Recorded]) -> None:
        for fold in self.folds:
            apply_all(fold, events)


def pages(feed: EventFeed, *, after: int = 0, until: int | None = None,
          page_size: int = PAGE_SIZE) -> Iterator[Sequence[Recorded]]:
    """The log after `after` (up to and including `until`), page by page."""
    while True:
        page = feed.read(after, page_size)
        if until is not None:
            page = page[:bisect_right(page, until, key=attrgetter("position"))]
        if not page:
            return
        yield page
        after = page[-1].position


def replay(feed: EventFeed, *, position: int | None = None, as_of: datetime | None = None,
           recorded_at: datetime | None = None, projections: Sequence[Projection] = PROJECTIONS) -> ReadModels:
    """The read models up to a log position, or up to the position a business or recorded time stands for."""
    if as_of is not None:
        position = last_position(feed, as_of, business_time)
    elif recorded_at is not None:
        position = last_position(feed, recorded_at, recorded_time)
    models = ReadModels(projections)
    for page in pages(feed, until=position):
        models.apply(page)
    return models


def last_position(feed: EventFeed, moment: datetime, time_of: Callable[[Recorded], datetime | None]) -> int:
    """The position of the last event whose `time_of` is <= moment; 0 when there is none."""
    last = 0
    for page in pages(feed):
        for recorded in page:
            at = time_of(recorded)
            if at is not None and at <= moment:
                last = recorded.position
    return last


def business_time(recorded: Recorded) -> datetime | None:
    """Account and market events: the market time they are about. Other streams are on the wall clock."""
    if not issubclass(recorded.type, LEDGER_EVENTS):
        return None
    return _time(recorded, 0)


def recorded_time(recorded: Recorded) -> datetime | None:
    return _time(recorded, 1)


def _time(recorded: Recorded, clock: int) -> datetime | None:
    try:
        return recorded.clocks[clock]
    except Exception:  # noqa: BLE001 - an unreadable event does not move a cut; a fold that meets it says why
        return None
