"""The one log reader: pages by type (0.1.0 topics included), the first of a type, the head, undecodable rows."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from tests.builders import one_of_each
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog, audit_page, decode, to_record
from tradeledger.adapters.eventstore import LedgerStore, open_store
from tradeledger.adapters.services.audit import verify_log
from tradeledger.adapters.services import ports
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.projections.fold import Undecodable

FIXTURE = Path(__file__).parent / "fixtures" / "store-0.1.0.sqlite"
TABLE = {"sqlite": ("stored_events", "rowid"), "postgresql": ("tradeledger_events", "notification_id")}


@pytest.fixture
def log(store: LedgerStore, store_url: str) -> Iterator[EventLog]:
    engine = create_db_engine(store_url)
    try:
        yield EventLog(store, engine)
    finally:
        engine.dispose()


@pytest.fixture
def legacy_log(tmp_path: Path) -> Iterator[EventLog]:
    """The store release 0.1.0 wrote (topics `domain.account:Account...`), upgraded to today's schema."""
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    url = f"sqlite:///{path}"
    upgrade(url)
    store, engine = open_store(url), create_db_engine(url)
    try:
        yield EventLog(store, engine)
    finally:
        engine.dispose()
        store.close()


def test_a_page_by_type_holds_exactly_the_events_of_those_types_in_log_order(log: EventLog) -> None:
    log.store.save(*one_of_each())
    everything = log.read(0, 1000)
    assert [r.position for r in everything] == sorted(r.position for r in everything)
    fills = [r for r in everything if r.type is Account.OrderFilled]
    assert fills and [r.position for r in log.read(0, 1000, [Account.OrderFilled])] == [r.position for r in fills]
    by_name = log.read(0, 1000, ["OrderFilled", "CandleClosed"])
    assert [r.position for r in by_name] == [r.position for r in everything
                                             if r.type in (Account.OrderFilled, Market.CandleClosed)]
    assert [r.position for r in log.read(fills[0].position, 1000, [Account.OrderFilled])] == \
        [r.position for r in fills[1:]]
    assert len(log.read(0, 1, ["OrderFilled", "CandleClosed"])) == 1


def test_an_unknown_type_name_is_refused_with_the_known_ones(log: EventLog) -> None:
    with pytest.raises(ValueError, match=r"^type: unknown event type OrderFiled; known: .*OrderFilled"):
        log.read(0, 10, ["OrderFiled"])


def test_first_of_a_type_and_the_head(log: EventLog) -> None:
    assert log.head() == 0 and log.first(Account.Opened) is None
    aggregates = one_of_each()
    log.store.save(*aggregates)
    first_fill = log.first("OrderFilled")
    assert first_fill is not None and first_fill.type is Account.OrderFilled
    assert first_fill.position == min(r.position for r in log.read(0, 1000) if r.type is Account.OrderFilled)
    assert log.head() == log.read(0, 1000)[-1].position


def test_append_and_get_go_through_the_store(log: EventLog) -> None:
    account, *_ = one_of_each()
    last = log.append(account.collect_events())
    assert last == log.head()
    assert log.get(account.id).cash == account.cash


def test_stored_rows_are_the_raw_rows_of_the_same_events(log: EventLog) -> None:
    log.store.save(*one_of_each())
    rows, recorded = log.stored(0, 1000), log.read(0, 1000)
    assert [(r.position, r.stream, r.version) for r in rows] == \
        [(r.position, r.stream, r.event.originator_version) for r in recorded]
    assert [vars(decode(r.topic, r.stream, r.version, r.state)) for r in rows] == [vars(r.event) for r in recorded]


def test_a_row_of_an_unknown_topic_and_a_payload_that_does_not_decode(log: EventLog) -> None:
    log.store.save(*one_of_each())
    candle = log.first(Market.CandleClosed)
    fill = log.first(Account.OrderFilled)
    assert candle is not None and fill is not None
    table, position = TABLE[log.dialect]
    with log.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET topic = 'gone.module:Nothing' WHERE {position} = :p"),
                     {"p": candle.position})
    state = bytes(log.stored(fill.position - 1, 1)[0].state)
    with log.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET state = :s WHERE {position} = :p"),
                     {"s": state[:32] + b'{"timestamp": 1}', "p": fill.position})

    fresh = EventLog(log.store, log.engine)
    unknown = next(r for r in fresh.read(0, 1000) if r.position == candle.position)
    assert unknown.type is Undecodable and unknown.stream == candle.stream and unknown.version == candle.version
    assert unknown.event.topic == "gone.module:Nothing" and "gone.module" in unknown.event.error
    broken = next(r for r in fresh.read(0, 1000) if r.position == fill.position)
    assert broken.type is Account.OrderFilled
    with pytest.raises(msgspec.ValidationError):
        broken.event
    # The auditor reads the same raw rows: both edits break their stream's chain there.
    found = {(f.position, f.check) for f in verify_log(fresh).findings}
    assert {(candle.position, "hash"), (fill.position, "hash")} <= found


def test_a_store_written_by_0_1_0_is_read_by_type_under_its_old_topics(legacy_log: EventLog) -> None:
    stored = {row.topic for row in legacy_log.scan_stored()}
    assert "domain.account:Account.OrderFilled" in stored and not any(t.startswith("tradeledger.") for t in stored)
    fills = legacy_log.read(0, 1000, [Account.OrderFilled])
    assert len(fills) == 15 and all(r.type is Account.OrderFilled for r in fills)
    assert [r.position for r in legacy_log.read(0, 1000, ["OrderFilled"])] == [r.position for r in fills]
    started = legacy_log.first(AgentRun.Started)
    assert started is not None and started.event.decision_config["predictor.name"]
    record = to_record(fills[0])
    assert record.type == "OrderFilled" and record.version == fills[0].event.originator_version
    assert record.recorded_at == record.at  # 0.1.0 recorded no wall clock: its recorded time is its business time
    assert [r.position for r in audit_page(legacy_log, types=["TradingHalted"])] == \
        [r.position for r in scan(legacy_log, types=["TradingHalted"])]


def test_the_audit_view_pages_and_bounds(log: EventLog) -> None:
    aggregates = one_of_each()
    saved = [e for a in aggregates for e in a.pending_events]
    log.store.save(*aggregates)
    records = audit_page(log, limit=10_000)
    assert [(r.type, r.version) for r in records] == [(type(e).__name__, e.originator_version) for e in saved]
    assert audit_page(log, after=records[2].position, limit=2) == records[3:5]
    stopped = audit_page(log, types=["Stopped"])  # one short name, two event classes (agent run, gateway)
    assert [r.position for r in stopped] == [r.position for r in records if r.type == "Stopped"]
    assert len({r.stream for r in stopped}) == 2
    with pytest.raises(ValueError, match="^limit: "):
        audit_page(log, limit=10_001)
    with pytest.raises(ValueError, match="^after: "):
        audit_page(log, after=-1)


def test_scan_walks_every_page(log: EventLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "PAGE", 3)
    log.store.save(*one_of_each())
    assert [r.position for r in scan(log)] == [r.position for r in log.read(0, 1000)]
    assert [r.position for r in scan(log, types=[Account.OrderFilled])] == \
        [r.position for r in log.read(0, 1000, [Account.OrderFilled])]
    assert [r.position for r in log.scan_stored()] == [r.position for r in log.read(0, 1000)]
