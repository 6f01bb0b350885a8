"""Shared fixtures: real SQLite files, a fresh database on the real PostgreSQL server, real data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tradeledger.adapters.database import upgrade
from tradeledger.adapters.eventstore import LedgerStore, open_store

ROOT = Path(__file__).resolve().parents[1]
CANDLES = ROOT.parent / "shared" / "data" / "candles"
POSTGRES_ADMIN = os.environ.get("TRADELEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_ADMIN} is not reachable: {error}"


def require_postgres() -> None:
    """Skip when the server is unreachable; in CI (CI=true) fail instead: PostgreSQL tests must run there."""
    problem = postgres_reachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, migrated-on-demand database on the real server, dropped afterwards.

    In CI (CI=true) an unreachable server is a failure, not a skip.
    """
    require_postgres()
    name = f"tl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on a SQLite file and on the PostgreSQL server."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def store(store_url: str) -> Iterator[LedgerStore]:
    upgrade(store_url)
    ledger = open_store(store_url)
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """One fresh database for the whole test session (for tests that reset it themselves), dropped at the end."""
    require_postgres()
    name = f"tl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def history_store(store_url: str) -> Iterator[Callable[[int], LedgerStore]]:
    """Builds a migrated store holding an opened account and N ticks of synthetic trading (two markets,
    signals, orders, fills, halts, heartbeats, client sessions), many ticks per transaction."""
    from scripts.synthetic_history import build_history

    opened: list[LedgerStore] = []

    def build(ticks: int) -> LedgerStore:
        upgrade(store_url)
        ledger = open_store(store_url)
        opened.append(ledger)
        build_history(ledger, ticks)
        return ledger

    yield build
    for ledger in opened:
        ledger.close()
