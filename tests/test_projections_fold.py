"""Every SQL projection equals the pure fold of the same events, on SQLite and PostgreSQL (property-based).

Histories are random but valid (made by the real aggregates). They are
appended in random chunks, each followed by a catch-up, and every few chunks
a new runner takes over (restoring its folds from the committed rows); the
page size is random too, so batch and restart boundaries fall everywhere. The pure fold gets the original
in-memory events, so the storage round trip is checked too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import LedgerStore, open_store
from tradeledger.projections import sql
from tradeledger.projections.fold import Recorded
from tradeledger.projections.portfolio_rows import ACCOUNTS, DAILY_PNL
from tradeledger.projections.portfolio_view import reconcile
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.replay import ReadModels, pages
from tradeledger.projections.rows import metadata
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.projections.verify import first_mismatch
from tests.projection_world import World, commands

Ledger = Callable[[], AbstractContextManager[tuple[LedgerStore, sa.Engine]]]


@contextmanager
def opened(url: str) -> Iterator[tuple[LedgerStore, sa.Engine]]:
    store, engine = open_store(url), create_db_engine(url)
    try:
        yield store, engine
    finally:
        store.close()
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_ledger(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """A new empty ledger per hypothesis example: a new SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        directory = tmp_path_factory.mktemp("fold")
        return lambda: _sqlite(directory)
    url = request.getfixturevalue("postgres_session_url")
    upgrade(url)
    return lambda: _emptied(url)


@contextmanager
def _sqlite(directory: Path) -> Iterator[tuple[LedgerStore, sa.Engine]]:
    url = f"sqlite:///{directory / uuid.uuid4().hex}.sqlite"
    upgrade(url)
    with opened(url) as ledger:
        yield ledger


@contextmanager
def _emptied(url: str) -> Iterator[tuple[LedgerStore, sa.Engine]]:
    with opened(url) as (store, engine):
        with engine.begin() as conn:
            names = ", ".join(["tradeledger_events", *metadata.tables])
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
        yield store, engine


def rows_equal_fold(engine: sa.Engine, models: ReadModels) -> None:
    with engine.connect() as conn:
        rows = sql.row_source(conn)
        for projection in PROJECTIONS:
            assert first_mismatch(models.tables.rows, rows, projection.tables) is None, projection.name


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=commands(), chunk=st.integers(1, 30), page=st.integers(1, 40), restart_every=st.integers(1, 4))
def test_sql_projections_equal_the_pure_fold(fresh_ledger: Ledger, script: list, chunk: int, page: int,
                                             restart_every: int) -> None:
    events = World().run(script)
    with fresh_ledger() as (store, engine):
        feed = EventLog(store, engine)
        runner = ProjectionRunner(feed, engine, page_size=page)
        for number, start in enumerate(range(0, len(events), chunk)):
            store.append(events[start:start + chunk])
            if number % restart_every == 0:
                runner = ProjectionRunner(feed, engine, page_size=page)  # restores its folds from the rows
            runner.catch_up()
        stored = [r for p in pages(feed) for r in p]
        assert [r.type for r in stored] == [type(e) for e in events]
        models = ReadModels()
        models.apply([Recorded(r.position, e) for r, e in zip(stored, events, strict=True)])
        rows_equal_fold(engine, models)


@settings(max_examples=150, deadline=None)
@given(script=commands())
def test_the_fold_reconciles_and_the_days_add_up(script: list) -> None:
    models = ReadModels()
    models.apply([Recorded(position, e) for position, e in enumerate(World().run(script), start=1)])
    rows = models.tables.rows
    assert reconcile(rows) is None
    (account,) = rows(ACCOUNTS)
    days = sum((d.pnl for d in rows(DAILY_PNL)), Decimal(0))
    assert days == (account.equity - account.initial_balance if account.mark_time else 0)
