"""The projection runner on SQLite and PostgreSQL: restarts, following live, rebuilds, failures."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tradeledger.adapters.services import readmodels
from tradeledger.adapters.services.ports import utcnow
from tradeledger.adapters.database import create_db_engine
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.projections import sql
from tradeledger.projections.fold import Fold, EventHandler, Projection
from tradeledger.projections.healthview import read_health
from tradeledger.projections.names import NAMES
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.runner import PAGE_SIZE, ProjectionRunner, ProjectionStatus
from tradeledger.projections.verify import verify_projections
from scripts.synthetic_history import HistoryBuilder
from tradeledger.settings import load_settings
from tests.composing import composed
from tests.conftest import ROOT

Snapshot = dict[str, list[Any]]


@pytest.fixture
def ledger(history_store: Callable[[int], LedgerStore], store_url: str) -> Iterator[tuple[LedgerStore, sa.Engine]]:
    store = history_store(120)
    engine = create_db_engine(store_url)
    yield store, engine
    engine.dispose()


def snapshot(engine: sa.Engine) -> Snapshot:
    with engine.connect() as conn:
        rows = sql.row_source(conn)
        return {t.name: rows(t) for p in PROJECTIONS for t in p.tables}


def assert_equal_to_a_fresh_fold(engine: sa.Engine, feed: EventLog) -> None:
    checks = verify_projections(engine, feed)
    assert [(c.name, c.lag, c.compared) for c in checks] == [(p.name, 0, True) for p in PROJECTIONS]
    assert [c for c in checks if not c.ok] == []


def wait_until_caught_up(runner: ProjectionRunner, head: int, limit: float = 60.0) -> list[ProjectionStatus]:
    """Waits for the runner to report every projection at `head` (the limit only stops a broken test hanging)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = runner.status()
        if status and all(s.position == head for s in status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"runner never reached position {head}: {runner.status()}")


def test_the_names_the_health_view_reads_are_the_registry_s_projections() -> None:
    assert NAMES == tuple(p.name for p in PROJECTIONS)


def test_a_runner_restarted_after_every_page_equals_one_fresh_fold(ledger: tuple[LedgerStore, sa.Engine]) -> None:
    store, engine = ledger
    feed = EventLog(store, engine)
    while ProjectionRunner(feed, engine, page_size=7).step():  # each runner restores from the committed rows
        pass
    assert_equal_to_a_fresh_fold(engine, feed)


def test_two_runners_never_apply_the_same_events_twice(ledger: tuple[LedgerStore, sa.Engine]) -> None:
    store, engine = ledger
    feed = EventLog(store, engine)
    first, second = (ProjectionRunner(feed, engine, page_size=50) for _ in range(2))
    first.step()
    second.step()
    second.step()
    with pytest.raises(sql.TrackingConflict):
        first.step()  # its folds are behind what is committed: refused, rolled back, reloaded
    first.catch_up()
    second.catch_up()
    assert_equal_to_a_fresh_fold(engine, feed)


def test_projections_at_different_positions_in_one_batch_each_apply_every_event_once(
        ledger: tuple[LedgerStore, sa.Engine]) -> None:
    """Each projection starts the batch at its own position, on an event that changes rows if applied twice."""
    store, engine = ledger
    feed = EventLog(store, engine)
    events = feed.read(0, 100_000)
    fills = [i for i, r in enumerate(events) if r.type is Account.OrderFilled]
    ahead = [p for p in PROJECTIONS if p.name != "connections"]  # connections stays at 0: the batch starts there
    assert len(fills) > len(ahead)
    for projection, index in zip(ahead, fills[::len(fills) // len(ahead)], strict=False):
        ProjectionRunner(feed, engine, (projection,), page_size=index + 1).step()  # up to and with that fill
    with engine.connect() as conn:
        assert len({t.position for t in sql.read_tracking(conn, PROJECTIONS).values()}) == len(PROJECTIONS)
    ProjectionRunner(feed, engine).catch_up()
    assert len(events) < PAGE_SIZE, "one batch held every projection's position"
    assert_equal_to_a_fresh_fold(engine, feed)


def test_rebuild_equals_the_read_models_kept_live(ledger: tuple[LedgerStore, sa.Engine], store_url: str) -> None:
    store, engine = ledger
    feed = EventLog(store, engine)
    runner = ProjectionRunner(feed, engine, page_size=50, poll_interval=3600)  # woken by appends, never by polling
    runner.start()
    builder = HistoryBuilder(store, symbols=("XRP/BTC",), account="live", seed=3)
    for _ in range(5):
        builder.extend(20, ticks_per_save=7)
    wait_until_caught_up(runner, store.head_position())
    runner.stop()
    live = snapshot(engine)
    with composed(load_settings(overrides={"database.url": store_url}, environ={})) as container:
        result = readmodels.rebuild(container.feed, container.engine)
    assert result.events == store.head_position()
    assert snapshot(engine) == live


def test_the_runner_follows_appends_made_by_another_process(ledger: tuple[LedgerStore, sa.Engine],
                                                            store_url: str) -> None:
    """On PostgreSQL only LISTEN/NOTIFY can wake it (polling is an hour); SQLite polls."""
    store, engine = ledger
    feed = EventLog(store, engine)
    poll = 3600.0 if engine.dialect.name == "postgresql" else 0.05
    runner = ProjectionRunner(feed, engine, poll_interval=poll)
    runner.start()
    wait_until_caught_up(runner, store.head_position())
    script = ("from adapters.eventstore import open_store; from scripts.synthetic_history import HistoryBuilder; "
              f"HistoryBuilder(open_store({store_url!r}), symbols=('XRP/BTC',), account='other', seed=9).extend(30)")
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
    wait_until_caught_up(runner, store.head_position())
    runner.stop()
    assert_equal_to_a_fresh_fold(engine, feed)


class Flaky(Fold):
    """Counts the candles it sees and raises on the candle at `fail_at`, while that is set."""

    fail_at: int | None = None
    seen: list[int] = []

    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {Market.CandleClosed: self.candle}

    def candle(self, _event: Market.CandleClosed, position: int) -> None:
        if position == Flaky.fail_at:
            raise RuntimeError("cannot project this candle")
        Flaky.seen.append(position)


FLAKY = Projection("flaky", (), Flaky)


def test_a_failing_projection_stops_at_its_event_and_resumes_there(ledger: tuple[LedgerStore, sa.Engine]) -> None:
    store, engine = ledger
    feed = EventLog(store, engine)
    candles = [r.position for p in [feed.read(0, 10_000)] for r in p if r.type is Market.CandleClosed]
    Flaky.fail_at, Flaky.seen = candles[40], []
    ProjectionRunner(feed, engine, (*PROJECTIONS, FLAKY), page_size=64).catch_up()

    with engine.connect() as conn:
        tracking = sql.read_tracking(conn, (*PROJECTIONS, FLAKY))
    head = store.head_position()
    assert tracking["flaky"].position == Flaky.fail_at - 1, "everything before the failing event is kept"
    assert (tracking["flaky"].error_position, tracking["flaky"].error) == (candles[40],
                                                                          "RuntimeError: cannot project this candle")
    assert {t.position for name, t in tracking.items() if name != "flaky"} == {head}, "the others go on"
    report = read_health(engine, head=head, now=utcnow(), heartbeat_interval=5, names=(*NAMES, FLAKY.name))
    assert report.exit_code == 2 and any("flaky stopped at position" in r for r in report.reasons)

    Flaky.fail_at, Flaky.seen = None, []  # fixed: the next runner retries the same event, never skips it
    ProjectionRunner(feed, engine, (*PROJECTIONS, FLAKY)).catch_up()
    with engine.connect() as conn:
        fixed = sql.read_tracking(conn, (FLAKY,))["flaky"]
    assert (fixed.position, fixed.error, fixed.error_position) == (head, None, None)
    assert Flaky.seen == candles[40:], "it resumes at the failed event: nothing skipped, nothing redone"


def test_an_undecodable_event_stops_exactly_the_projections_that_read_it(
        ledger: tuple[LedgerStore, sa.Engine]) -> None:
    store, engine = ledger
    feed = EventLog(store, engine)
    candle = next(r.position for r in feed.read(0, 10_000) if r.type is Market.CandleClosed and r.position > 100)
    table, key = ("stored_events", "rowid") if engine.dialect.name == "sqlite" else \
        ("tradeledger_events", "notification_id")
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET state = :state WHERE {key} = :position"),
                     {"state": bytes(32) + b'{"open_time": "not a time"}', "position": candle})
    ProjectionRunner(feed, engine).catch_up()
    with engine.connect() as conn:
        tracking = sql.read_tracking(conn, PROJECTIONS)
    assert (tracking["portfolio"].position, tracking["portfolio"].error_position) == (candle - 1, candle)
    assert "open_time" in (tracking["portfolio"].error or "")
    assert tracking["signals"].position == store.head_position() and tracking["signals"].error is None
