"""The backtest's summary folded as the events are appended, instead of a second pass over the log.

The session appends every event it decides; `HistoryTap` stands in for its log
during the run and hands each append's events, at the positions the store gave
them, to a `HistoryLog` (only the types its folds read: the signals, half the
events, are left out). The folds see the same events at the same positions as a
read of the log would give (they read only the event, its stream and position),
so the summary is the one `collect` reads back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from tradeledger.adapters.services.metrics_log import HistoryLog
from tradeledger.adapters.services.ports import EventLogPort
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.projections.fold import Recorded


class PositionedLog(EventLogPort, Protocol):
    def append_positions(self, events: Sequence[Any]) -> Sequence[int]: ...


class HistoryTap:
    """`log`, with each append's events of the types `history` reads also folded into it."""

    def __init__(self, log: PositionedLog, history: HistoryLog) -> None:
        self.log, self.history = log, history

    def append(self, events: Sequence[Any]) -> int:
        positions = self.log.append_positions(events)
        if not positions:
            return 0
        types = self.history.types
        self.history.appended(positions[0], [Recorded(p, e) for p, e in zip(positions, events, strict=True)
                                             if type(e) in types], positions[-1])
        return positions[-1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


@contextmanager
def tapped(session: TradingSession, history: HistoryLog) -> Iterator[None]:
    """`session` appending through a `HistoryTap` while the block runs."""
    log = session.log
    session.log = HistoryTap(log, history)  # type: ignore[arg-type]  # a log with the port's methods
    try:
        yield
    finally:
        session.log = log
