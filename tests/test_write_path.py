"""The append path: the bytes it stores (both backends, every route into it) and the SQLite commit durability."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tradeledger.adapters.database import BULK_PAGE_SIZE, upgrade
from tradeledger.adapters.eventstore import RECORDED_AT, LedgerStore, open_store, split_state, store_environment
from tradeledger.domain.ids import market_id
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction
from tests.builders import one_of_each

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2024, 3, 1, 12, tzinfo=timezone.utc)
RECORDED = datetime(2024, 3, 1, 12, 0, 7, 250000, tzinfo=timezone.utc)
STAMP = "2024-03-01T12:00:07.250000Z"
ENVELOPE = ("originator_id", "originator_version")


def clock() -> datetime:
    return RECORDED


def market_ticks(market: Market, count: int) -> list[Any]:
    for _ in range(count):
        at = AT + timedelta(minutes=5 * market.candles_closed)
        market.close_candle(Candle(symbol="ETH/BTC", timeframe="5m", open_time=at, open=Decimal("0.05"),
                                   high=Decimal("0.06"), low=Decimal("0.04"), close=Decimal("0.055"),
                                   volume=Decimal("10.00000001")))
        market.generate_signal(Decision(prediction=Prediction.UP, confidence=0.75, model_name="m", model_version="1",
                                        members=(MemberPrediction(name="a", prediction=Prediction.DOWN,
                                                                  confidence=1.0),)),
                               is_actionable=True, data_quality=0.95, features_used=("rsi",),
                               feature_values={"rsi": 55.5})
    return market.collect_events()


def stored_rows(store: LedgerStore) -> list[tuple[Any, int, str, bytes]]:
    notifications = store.recorder.select_notifications(start=0, limit=10_000, inclusive_of_start=False)
    return [(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]


def expected_rows(events: list[Any]) -> list[tuple[Any, int, str, bytes]]:
    """The documented format (module docstring of adapters.eventstore), computed the plain way."""
    encoder = msgspec.json.Encoder(decimal_format="string")
    previous: dict[Any, bytes] = {}
    rows = []
    for e in events:
        topic = f"{type(e).__module__}:{type(e).__qualname__}"
        payload = encoder.encode({**{k: v for k, v in vars(e).items() if k not in ENVELOPE}, RECORDED_AT: STAMP})
        digest = hashlib.sha256(previous.get(e.originator_id, bytes(32)) + e.originator_id.bytes
                                + e.originator_version.to_bytes(8, "big") + topic.encode() + payload).digest()
        previous[e.originator_id] = digest
        rows.append((e.originator_id, e.originator_version, topic, digest + payload))
    return rows


@pytest.fixture
def migrated(store_url: str) -> str:
    upgrade(store_url)
    return store_url


def test_every_route_stores_the_documented_bytes(migrated: str) -> None:
    """`save` (the library's route), `append` with cached heads, and `append` by a store that reads its heads."""
    store = LedgerStore(env=store_environment(migrated), clock=clock)
    aggregates = one_of_each(AT)
    events = [e for a in aggregates for e in a.pending_events]
    recordings = store.save(*aggregates)
    assert [r.notification.state for r in recordings] == [row[3] for row in stored_rows(store)]
    assert [r.notification.originator_id for r in recordings] == [e.originator_id for e in events]

    market = next(a for a in aggregates if isinstance(a, Market))
    for _ in range(3):
        batch = market_ticks(market, 4)
        store.append(batch)
        events += batch
    store.close()
    fresh = LedgerStore(env=store_environment(migrated), clock=clock)  # no heads cached: read from the store
    try:
        batch = market_ticks(market, 2)
        positions = fresh.append_positions(batch)
        events += batch
        rows = stored_rows(fresh)
        assert rows == expected_rows(events)
        assert list(positions) == list(range(len(events) - len(batch) + 1, len(events) + 1))
    finally:
        fresh.close()


def test_the_stored_bytes_of_a_known_stream_do_not_change(sqlite_url: str) -> None:
    """The head digest covers every byte of the stream; computed by the write path of release 0.4."""
    upgrade(sqlite_url)
    store = LedgerStore(env=store_environment(sqlite_url), clock=clock)
    try:
        market = Market.list("ETH/BTC", "5m", at=AT)
        store.append([*market.collect_events(), *market_ticks(market, 1)])
        digest, payload = split_state(stored_rows(store)[-1][3])
    finally:
        store.close()
    assert digest.hex() == "7c5edb5753faaa8a3c1cbf4985cf2d872665661517fdb64fdf72a345fa84a0a7"
    assert payload.endswith(b'"error":"","timestamp":"2024-03-01T12:05:00Z","recorded_at":"2024-03-01T12:00:07.250000Z"}')


# -- commit durability (SQLite) -------------------------------------------------------------


@pytest.fixture
def sqlite_store(sqlite_url: str, request: pytest.FixtureRequest) -> Iterator[LedgerStore]:
    upgrade(sqlite_url)
    store = open_store(sqlite_url, **request.param)
    try:
        yield store
    finally:
        store.close()


def pragmas(store: LedgerStore, *, writer: bool) -> tuple[int, str]:
    """`synchronous` and `journal_mode` of the event store's own connection (the writer's or a reader's)."""
    with store.recorder.datastore.transaction(commit=writer) as c:
        c.execute("PRAGMA synchronous")
        synchronous = c.fetchone()[0]
        c.execute("PRAGMA journal_mode")
        return synchronous, c.fetchone()[0]


@pytest.mark.parametrize(("sqlite_store", "synchronous"), [({}, 2), ({"durable": True}, 2), ({"durable": False}, 1)],
                         indirect=["sqlite_store"])
def test_the_event_store_commits_with_the_chosen_durability(sqlite_store: LedgerStore, synchronous: int) -> None:
    """FULL (2): each commit waits for an fsync. NORMAL (1): it does not; the log stays WAL either way."""
    sqlite_store.append(Market.list("ETH/BTC", "5m", at=AT).collect_events())
    assert pragmas(sqlite_store, writer=True) == (synchronous, "wal")
    assert pragmas(sqlite_store, writer=False) == (synchronous, "wal")


def test_a_killed_process_keeps_every_commit_made_without_durability(sqlite_url: str) -> None:
    """NORMAL skips only the fsync: a commit is in the log file once the process has written it."""
    upgrade(sqlite_url)
    child = textwrap.dedent(f"""
        import os, signal
        from tradeledger.adapters.eventstore import open_store
        from tradeledger.domain.market import Market
        from tests.test_write_path import AT, market_ticks
        store = open_store({sqlite_url!r}, durable=False)
        market = Market.list("ETH/BTC", "5m", at=AT)
        store.append(market.collect_events())
        for _ in range(3):
            position = store.append(market_ticks(market, 2))
        print(position, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    reopened = open_store(sqlite_url)
    try:
        assert reopened.head_position() == int(killed.stdout) == 13
        assert reopened.repository.get(market_id("ETH/BTC", "5m")).candles_closed == 6
    finally:
        reopened.close()
    with sqlite3.connect(sqlite_url.split(":///", 1)[1]) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_unknown_synchronous_setting_is_refused(sqlite_url: str) -> None:
    env = {**store_environment(sqlite_url), "SQLITE_SYNCHRONOUS": "SOMETIMES"}
    with pytest.raises(OSError, match="SQLITE_SYNCHRONOUS"):
        LedgerStore(env=env)


@pytest.mark.parametrize(("name", "synchronous"), [("backtest", 1), ("agent", 2), ("run", 2)])
def test_only_a_backtest_gives_up_durability(sqlite_url: str, name: str, synchronous: int) -> None:
    """The CLI opens a backtest's store without an fsync per commit (it is run again from its files), every
    other command that appends with one."""
    from tradeledger.adapters.cli_commands import CATALOGUE
    from tradeledger.adapters.cliargs import declared
    from tradeledger.adapters.composition import Composition
    from tradeledger.settings import load_settings

    assert [command for command in CATALOGUE if not declared(command).durable] == ["backtest"]
    upgrade(sqlite_url)
    spec = declared(name)
    settings = load_settings(overrides={"database.url": sqlite_url}, environ={})
    with Composition(settings, read_only=spec.reads is not None, durable=spec.durable) as root:
        assert pragmas(root.store, writer=True) == (synchronous, "wal")


@pytest.mark.parametrize(("name", "page_size"), [("backtest", BULK_PAGE_SIZE), ("agent", 4096), ("run", 4096)])
def test_a_backtest_makes_its_new_store_for_bulk_appends(tmp_path: Path, name: str, page_size: int) -> None:
    """A new store migrated for a backtest has large pages; any other command's the SQLite default, and an
    existing store keeps its own whoever opens it."""
    from tradeledger.adapters.cliargs import declared
    from tradeledger.adapters.composition import Composition
    from tradeledger.settings import load_settings

    def migrated(url: str, command: str) -> int:
        settings = load_settings(overrides={"database.url": url}, environ={})
        with Composition(settings, durable=declared(command).durable) as root:
            root.migrate()
        with sqlite3.connect(url.split(":///", 1)[1]) as conn:
            return int(conn.execute("PRAGMA page_size").fetchone()[0])

    new, existing = f"sqlite:///{tmp_path / 'new.sqlite'}", f"sqlite:///{tmp_path / 'existing.sqlite'}"
    assert migrated(new, name) == page_size
    assert migrated(existing, "db upgrade") == 4096 and migrated(existing, name) == 4096
