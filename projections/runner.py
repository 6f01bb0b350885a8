"""The projection runner: keeps every read model current, applying each event exactly once.

One step reads a page of the log after the lowest tracked position, decodes
it once (the feed does), applies it to every projection that is behind, and
commits all their rows and their new tracking positions in one transaction.
A crash anywhere loses the whole uncommitted step and nothing else; on
restart every fold is restored from the committed rows, so the step is
redone exactly once.

A projection that fails on an event stops at that event: its fold raised on
it, or the database refused the rows the fold made of it (each projection
writes in a savepoint; the first such event is found by bisecting the batch).
The events before it in the batch are committed, its tracking row records
the failing position, the error and when it first failed there (visible in
the health view and alerted), and the other projections go on. It is retried
from the same event when a runner starts again, never skipped; once it gets
past that event the error is cleared.

Following live: the feed wakes the runner on every append in this process
and, on PostgreSQL, on every LISTEN/NOTIFY from other processes; the
`poll_interval` timeout covers SQLite across processes.
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from operator import attrgetter
from typing import Protocol

import msgspec
import sqlalchemy as sa

from tradeledger.projections import sql
from tradeledger.projections.fold import FoldFailed, Projection, Recorded, apply_all
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.rows import PendingChanges

logger = logging.getLogger(__name__)
# Events per step (and per transaction) while catching up. Measured on a 1M-event rebuild: 20,000
# beats 5,000 by ~15% (fewer commits, and the activity feed's 1,000 rows are rewritten per step).
PAGE_SIZE = 20_000
ERROR_LENGTH = 500  # characters of an error kept in the tracking row
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def describe(error: BaseException) -> str:
    """`<type>: <message>` on one printable line of at most ERROR_LENGTH characters (it goes to a text column)."""
    if isinstance(error, sa.exc.StatementError) and error.orig is not None:
        error = error.orig  # the driver's (or bind processor's) own words, without the SQL and its parameters
    message = " ".join(str(error).split())
    text = CONTROL.sub(lambda c: f"\\x{ord(c.group()):02x}", f"{type(error).__name__}: {message}" if message
                       else type(error).__name__)
    return text if len(text) <= ERROR_LENGTH else text[:ERROR_LENGTH - 3] + "..."


def log_stop(name: str, failed: FoldFailed | None) -> None:
    logger.error("projection %s stopped: %s", name, failed, exc_info=failed and failed.cause)


class EventFeed(Protocol):
    def read(self, after: int, limit: int) -> Sequence[Recorded]:
        """Up to `limit` decoded events after a log position, in log order."""
        ...

    def head(self) -> int:
        """The last position in the log (0 when empty)."""
        ...

    def watch(self, wake: Callable[[], None]) -> AbstractContextManager[None]:
        """Call `wake()` whenever new events may have been appended, while the context is open."""
        ...


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    position: int
    head: int
    lag: int
    error: str | None = None
    error_position: int | None = None
    error_at: datetime | None = None


class Slot:
    """One projection inside a runner: its fold and how far it has committed."""

    def __init__(self, projection: Projection, conn: sa.Connection, tracking: sql.Tracking, *, place: sql.Place,
                 failed: bool) -> None:
        self.projection = projection
        self.place = place
        self.restore(conn)
        self.tracking = tracking
        self.active = not failed  # a projection that failed in this run waits for the next run or a rebuild
        self.failure: FoldFailed | None = None  # what stopped it in the last step

    def restore(self, conn: sa.Connection) -> None:
        """The fold as of the committed rows, with nothing pending."""
        self.changes = PendingChanges()
        self.fold = self.projection.fold.restore(sql.row_source(conn, self.place), self.changes)

    def apply(self, conn: sa.Connection, batch: Sequence[Recorded], now: datetime) -> sql.Tracking | None:
        """Apply the part of the batch this projection has not seen; its new tracking row, if it moved."""
        events = batch[bisect_right(batch, self.tracking.position, key=attrgetter("position")):]
        if not events:
            return None
        stored, self.failure = self.store(conn, events)
        tracking = self.tracked(stored, self.failure, now)
        sql.advance(conn, self.projection.name, expected=self.tracking.position, to=tracking, place=self.place)
        return tracking

    def store(self, conn: sa.Connection, events: Sequence[Recorded]) -> tuple[Sequence[Recorded], FoldFailed | None]:
        """Fold and write as many of the events as can be: (those written, the failure that stopped the rest)."""
        failed = None
        try:
            apply_all(self.fold, events)
        except FoldFailed as error:
            failed = error
            events = events[:bisect_left(events, error.position, key=attrgetter("position"))]
            self.refold(conn, events)
        refused = self.write(conn)
        if refused is not None:
            index, refused = self.first_unstorable(conn, events, refused)
            failed = FoldFailed(events[index].position, refused)
            events = events[:index]
            self.refold(conn, events)
            self.write(conn)  # this prefix was written once already in the bisection
        return events, failed

    def refold(self, conn: sa.Connection, events: Sequence[Recorded]) -> None:
        # A failing handler may have half-changed the fold: start again from the committed rows
        # and redo only the given events (a fold is deterministic, so they apply again).
        self.restore(conn)
        apply_all(self.fold, events)

    def write(self, conn: sa.Connection, *, keep: bool = True) -> Exception | None:
        """Write the pending rows in a savepoint; the database's refusal if it refused them (nothing written then)."""
        savepoint = conn.begin_nested()
        try:
            sql.flush(conn, self.changes, self.place)
        except Exception as error:
            if not sql.unstorable(error):
                raise  # not the rows' fault: the whole step rolls back and is retried
            savepoint.rollback()
            return error
        if keep:
            savepoint.commit()
        else:
            savepoint.rollback()
        return None

    def first_unstorable(self, conn: sa.Connection, events: Sequence[Recorded],
                         refused: Exception) -> tuple[int, Exception]:
        """The index of the first event after which the fold's rows cannot be written, and the refusal."""
        good, bad = 0, len(events)  # the rows after events[:good] can be written, after events[:bad] not
        while bad - good > 1:
            middle = (good + bad) // 2
            self.refold(conn, events[:middle])
            error = self.write(conn, keep=False)
            if error is None:
                good = middle
            else:
                bad, refused = middle, error
        return bad - 1, refused

    def tracked(self, stored: Sequence[Recorded], failed: FoldFailed | None, now: datetime) -> sql.Tracking:
        name, position = self.projection.name, stored[-1].position if stored else self.tracking.position
        if failed is None:
            return sql.Tracking(name=name, position=position)
        again = self.tracking.error_position == failed.position and self.tracking.error_at is not None
        return sql.Tracking(name=name, position=position, error=describe(failed.cause),
                            error_position=failed.position, error_at=self.tracking.error_at if again else now)


class ProjectionRunner:
    def __init__(self, feed: EventFeed, engine: sa.Engine, projections: Sequence[Projection] = PROJECTIONS, *,
                 page_size: int = PAGE_SIZE, poll_interval: float = 0.5,
                 on_progress: Callable[[list[ProjectionStatus]], None] | None = None,
                 place: sql.Place = sql.live, clock: Clock = utcnow,
                 on_stop: Callable[[str, FoldFailed | None], None] = log_stop) -> None:
        self.feed = feed
        self.engine = engine
        self.projections = tuple(projections)
        self.place = place
        self.clock = clock
        self.on_stop = on_stop  # told once a projection's stop is committed
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.on_progress = on_progress
        self.slots: list[Slot] = []
        self.failed: set[str] = set()
        self.head = 0
        self._statuses: list[ProjectionStatus] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one step -------------------------------------------------------------

    def load(self) -> None:
        """(Re)build every slot from the committed rows and tracking positions."""
        with self.engine.begin() as conn:
            sql.ensure_tracking(conn, self.projections, self.place)
            tracking = sql.read_tracking(conn, self.projections, self.place)
            self.slots = [Slot(p, conn, tracking[p.name], place=self.place, failed=p.name in self.failed)
                          for p in self.projections]

    def step(self) -> int:
        """Apply one page of the log to every active projection; returns how many events were read."""
        if not self.slots:
            self.load()
        active = [s for s in self.slots if s.active]
        batch = self.feed.read(min(s.tracking.position for s in active), self.page_size) if active else []
        if batch:
            now = self.clock()
            try:
                with self.engine.begin() as conn:
                    sql.begin_writing(conn)  # before the savepoints each projection writes in
                    moved = [slot.apply(conn, batch, now) for slot in active]
            except Exception:
                self.slots = []  # folds may be ahead of what was committed: reload before the next step
                raise
            self.commit(active, moved)
        self.head = max(self.feed.head(), batch[-1].position if batch else 0)
        self.publish()
        return len(batch)

    def commit(self, slots: list[Slot], moved: list[sql.Tracking | None]) -> None:
        for slot, tracking in zip(slots, moved, strict=True):
            if tracking is not None:
                slot.tracking = tracking
                if tracking.error is not None:
                    slot.active = False
                    self.failed.add(slot.projection.name)
                    self.on_stop(slot.projection.name, slot.failure)

    def catch_up(self) -> int:
        """Apply everything up to the head as of now; returns the number of events read."""
        total = 0
        while True:
            try:
                read = self.step()
            except sql.TrackingConflict as conflict:
                logger.info("%s; continuing from the committed rows", conflict)
                continue  # another runner or a rebuild committed first: the step reloaded from its rows
            total += read
            if read < self.page_size:
                return total

    # -- status ---------------------------------------------------------------

    def publish(self) -> None:
        self._statuses = [
            ProjectionStatus(name=s.projection.name, position=s.tracking.position, head=self.head,
                             lag=max(0, self.head - s.tracking.position), error=s.tracking.error,
                             error_position=s.tracking.error_position, error_at=s.tracking.error_at)
            for s in self.slots
        ]
        if self.on_progress is not None:
            self.on_progress(self._statuses)

    def status(self) -> list[ProjectionStatus]:
        """Each projection's position, lag (head - position) and error, as of the last step."""
        return self._statuses

    # -- background thread ----------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="projection-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        with self.feed.watch(self._wake.set):
            while not self._stopping.is_set():
                self._wake.clear()  # before reading, so an append during the step is never missed
                try:
                    full = self.step() == self.page_size
                except sql.TrackingConflict as conflict:
                    logger.info("%s; continuing from the committed rows", conflict)
                    continue
                except Exception:
                    logger.exception("projection step failed; retrying in %ss", self.poll_interval)
                    self._stopping.wait(self.poll_interval)
                    continue
                if not full:
                    self._wake.wait(self.poll_interval)
