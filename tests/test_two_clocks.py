"""Two clocks: every event's business time (the market time it is about) and recorded time (the wall clock
at append), in the store, the log views, the export and the three replay cuts."""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import redirect_stdout
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import example, given, settings as hypothesis_settings, strategies as st

from tradeledger.adapters.services import backtest
from tradeledger.adapters.services.trading import AgentError
from tradeledger.adapters.services.audit import verify_log
from tradeledger.adapters.cli import main
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EVENT_TYPES, EventLog, audit_page
from tradeledger.adapters.eventstore import RECORDED_AT, ChainedMapper, LedgerStore, split_state, store_environment
from tradeledger.adapters.marketdata import load_candles
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic
from tradeledger.settings import Settings, load_settings
from tests.agents import resumed
from tests.composing import composed
from tests.conftest import CANDLES

ETH = CANDLES / "ETH_BTC-5m.csv"
UTC = timezone.utc


class Clock:
    """A wall clock the test sets: appends are stamped with whatever it reads."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def cli(url: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--database", url, *args])
    return code, out.getvalue()


def log_of(url: str) -> list[dict[str, Any]]:
    code, out = cli(url, "events", "--limit", "10000", "--json")
    assert code == 0
    records: list[dict[str, Any]] = json.loads(out)
    return records


def time_of(record: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(record[key])


def last_position(log: list[dict[str, Any]], key: str, moment: datetime) -> int:
    """The done-when's N: the last event whose `key` time is <= moment."""
    return max((r["position"] for r in log if time_of(r, key) <= moment), default=0)


def replayed(url: str, *cut: str) -> tuple[int, Any]:
    code, out = cli(url, "replay", *cut, "--json")
    return code, json.loads(out) if code == 0 else None


def trading_settings(url: str) -> Settings:
    return load_settings(overrides={"database.url": url, "predictor.name": "sma_cross"}, environ={})


@pytest.fixture(scope="module")
def eth() -> list[Candle]:
    return load_candles(ETH).candles[:300]


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory, eth: list[Candle]) -> str:
    """A real backtest (the CLI's code path) of the first 300 ETH/BTC candles."""
    url = f"sqlite:///{tmp_path_factory.mktemp('clocks') / 'ledger.sqlite'}"
    with composed(trading_settings(url)) as container:
        backtest.run(container.agent(container.settings), container.feed, eth, batch_size=100)
    return url


@pytest.fixture(scope="module")
def backtest_log(backtested: str) -> list[dict[str, Any]]:
    return log_of(backtested)


# -- the store ----------------------------------------------------------------------


def test_each_append_stamps_the_wall_clock_and_decoding_ignores_it(store_url: str) -> None:
    upgrade(store_url)
    clock = Clock(datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC))
    store = LedgerStore(env=store_environment(store_url), clock=clock)
    opened_at = datetime(2018, 1, 10, 4, 55, tzinfo=UTC)
    account = Account.open("paper", "BTC", Decimal(1), at=opened_at)
    appended = list(account.pending_events)
    store.save(account)
    clock.now += timedelta(seconds=1, microseconds=250)
    account.halt_trading(rule="manual", reason="test", metrics={}, by="test", at=opened_at + timedelta(minutes=5))
    appended += account.pending_events
    store.save(account)

    first, second = log_over(store, store_url).stored(0, 10)
    assert split_state(first.state)[1].endswith(b',"recorded_at":"2030-05-01T12:00:00.000000Z"}')
    assert split_state(second.state)[1].endswith(b',"recorded_at":"2030-05-01T12:00:01.000250Z"}')
    assert [vars(e) for e in store.events.get(account.id)] == [vars(e) for e in appended], "no extra field"
    records = audit_page(log_over(store, store_url))
    assert [(r.at, r.recorded_at) for r in records] == [
        (opened_at, datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)),
        (opened_at + timedelta(minutes=5), datetime(2030, 5, 1, 12, 0, 1, 250, tzinfo=UTC))]
    assert verify_log(log_over(store, store_url)).ok
    store.close()


def test_every_event_decodes_to_exactly_its_fields(store: LedgerStore) -> None:
    from tests.builders import one_of_each

    aggregates = one_of_each()
    pending = [e for a in aggregates for e in a.pending_events]
    store.save(*aggregates)
    assert [vars(e) for a in aggregates for e in store.events.get(a.id)] == [vars(e) for e in pending]


def test_no_event_has_a_field_named_like_the_reserved_key() -> None:
    for topics in EVENT_TYPES.values():
        for topic in topics:
            assert RECORDED_AT not in {f.name for f in dataclasses.fields(resolve_topic(topic))}, topic


def test_the_hash_chain_covers_the_recorded_time(tmp_path: Path, eth: list[Candle]) -> None:
    path = tmp_path / "ledger.sqlite"
    url = f"sqlite:///{path}"
    with composed(trading_settings(url)) as container:
        backtest.run(container.agent(container.settings), container.feed, eth[:30], batch_size=10)
        target = container.feed.stored(0, 10)[5]
    digest, payload = split_state(target.state)
    altered = payload.replace(b'"recorded_at":"20', b'"recorded_at":"19')
    assert altered != payload
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (digest + altered, target.position))
    store = open_store_for(url)
    finding = verify_log(log_over(store, url)).findings[0]
    store.close()
    assert (finding.check, finding.position) == ("hash", target.position)


# -- business time -------------------------------------------------------------------


def test_a_backtest_opens_its_account_at_the_first_candles_open(backtest_log: list[dict[str, Any]],
                                                                 eth: list[Candle]) -> None:
    log = backtest_log
    opened = next(r for r in log if r["type"] == "Opened")
    assert time_of(opened, "at") == eth[0].open_time
    started = next(r for r in log if r["type"] == "Started")
    assert time_of(started, "at") > datetime(2024, 1, 1, tzinfo=UTC), "an agent run is on the wall clock"
    ledger = [r for r in log if r["type"] not in ("Started", "Heartbeat", "Stopped")]
    assert min(time_of(r, "at") for r in ledger) == eth[0].open_time
    assert all(time_of(r, "recorded_at") >= time_of(started, "recorded_at") for r in ledger)


@hypothesis_settings(max_examples=40, deadline=None)
@given(minutes=st.integers(min_value=-30, max_value=300 * 5 + 30), seconds=st.integers(0, 59))
@example(minutes=0, seconds=0).via("the first candle's open")
@example(minutes=-1, seconds=0).via("before the history")
def test_as_of_is_the_position_of_the_last_event_at_or_before_it(backtested: str, backtest_log: list[dict[str, Any]],
                                                                 minutes: int, seconds: int) -> None:
    log = backtest_log
    first = min(time_of(r, "at") for r in log)
    moment = first + timedelta(minutes=minutes, seconds=seconds)
    position = last_position(log, "at", moment)
    code, as_of = replayed(backtested, "--as-of", moment.isoformat())
    if position == 0:
        assert code == 1, "nothing had happened yet"
        return
    assert code == 0 and as_of == replayed(backtested, "--position", str(position))[1]


def test_as_of_inside_every_candle_with_a_fill_answers(backtested: str, backtest_log: list[dict[str, Any]]) -> None:
    log = backtest_log
    fills = [time_of(r, "at") for r in log if r["type"] == "OrderFilled"]
    assert len(fills) > 4
    for fill in fills:
        moment = fill + timedelta(minutes=2)
        code, view = replayed(backtested, "--as-of", moment.isoformat())
        assert code == 0 and view == replayed(backtested, "--position", str(last_position(log, "at", moment)))[1]


# -- recorded time -------------------------------------------------------------------


def paced(candles: Sequence[Candle], clock: Clock, lag: timedelta) -> Iterator[Candle]:
    """A live feed running `lag` behind the market: each candle arrives at its close + lag, by the clock."""
    for candle in candles:
        clock.now = candle.close_time + lag
        yield candle


def test_recorded_at_shows_what_the_system_held_at_that_wall_time(store_url: str, eth: list[Candle]) -> None:
    lag = timedelta(hours=1)  # the agent is catching up: business and wall time differ by an hour
    clock = Clock(eth[0].close_time + lag)
    with composed(trading_settings(store_url), clock=clock) as container:
        agent = container.agent(container.settings)
        agent.resume()
        agent.start(("test",))
        agent.run_feed(paced(eth[:100], clock, lag), batch_size=1)
        agent.stop("test done")  # no agent runs: the command is applied at once, at the clock's time
        clock.now += timedelta(seconds=30)
        halt = container.control.issue("halt", reason="operator", by="test", channel="test", at=clock()).position
        halted_at = clock.now
        agent = container.agent(container.settings)
        agent.resume()
        agent.start(("test",))
        agent.run_feed(paced(eth[100:160], clock, lag), batch_size=1)
        agent.stop("test done")

    log = log_of(store_url)
    assert {r["position"]: time_of(r, "recorded_at") for r in log}[halt] == halted_at
    wall = eth[60].close_time + lag
    code, then = replayed(store_url, "--recorded-at", wall.isoformat())
    assert code == 0 and then == replayed(store_url, "--position", str(last_position(log, "recorded_at", wall)))[1]
    assert time_of(then["account"], "mark_time") == eth[60].close_time, "what the dashboard showed at that time"
    code, by_market_time = replayed(store_url, "--as-of", wall.isoformat())
    assert code == 0 and by_market_time == replayed(store_url, "--position", str(last_position(log, "at", wall)))[1]
    assert time_of(by_market_time["account"], "mark_time") >= eth[72].close_time, "an hour further on the market"

    assert replayed(store_url, "--recorded-at", (halted_at - timedelta(microseconds=1)).isoformat())[1][
        "account"]["halted"] is False
    assert replayed(store_url, "--recorded-at", halted_at.isoformat())[1]["account"]["halted"] is True
    assert replayed(store_url, "--recorded-at", (eth[0].close_time + lag - timedelta(seconds=1)).isoformat())[0] == 1


def test_replay_takes_exactly_one_cut(sqlite_url: str) -> None:
    for args in (["--as-of", "2024-01-01", "--recorded-at", "2024-01-01"], ["--recorded-at", "2024-01-01",
                                                                            "--position", "3"],
                 ["--recorded-at", "noon"]):
        assert cli(sqlite_url, "replay", *args)[0] == 2


# -- stores written before 0.2 ----------------------------------------------------------


class Pre02Mapper(ChainedMapper):
    """Writes payloads as 0.1 did: without a recorded time."""

    def to_stored_event(self, domain_event: Any, recorded_at: str | None = None) -> StoredEvent:
        stored = super().to_stored_event(domain_event, recorded_at)
        state = stored.state[:stored.state.rindex(b',"recorded_at":')] + b"}"
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, state)


class Pre02Store(LedgerStore):
    name = LedgerStore.name  # the same tables

    def construct_mapper(self) -> ChainedMapper:
        return Pre02Mapper(self.clock)


def test_a_store_written_before_recorded_times_keeps_working(store_url: str, eth: list[Candle]) -> None:
    """0.1 opened the account on the wall clock before backtesting 2018, and stored one time per event."""
    upgrade(store_url)
    old = Pre02Store(env=store_environment(store_url))
    settings = trading_settings(store_url)
    old.save(Account.open("paper", "BTC", settings.trading.initial_balance, at=datetime.now(UTC)))
    agent = resumed(log_over(old, store_url), settings)
    agent.start(("0.1",))
    agent.run_feed(eth[:200], batch_size=50)
    agent.stop("done")
    old.close()
    assert all(b"recorded_at" not in split_state(n.state)[1] for n in log_over(open_store_for(store_url), store_url).scan_stored())

    log = log_of(store_url)
    assert all(r["recorded_at"] == r["at"] for r in log), "the rule: recorded time = business time"
    for moment in (eth[50].close_time, eth[150].open_time + timedelta(minutes=2)):
        code, view = replayed(store_url, "--as-of", moment.isoformat())
        assert code == 0 and view == replayed(store_url, "--position", str(last_position(log, "at", moment)))[1]
        code, view = replayed(store_url, "--recorded-at", moment.isoformat())
        assert code == 0 and view == replayed(store_url, "--position",
                                              str(last_position(log, "recorded_at", moment)))[1]
    assert cli(store_url, "verify")[0] == 0 and cli(store_url, "reproduce")[0] == 0

    with composed(settings) as container:  # today's agent continues it; its appends carry recorded times
        head = container.store.head_position()
        agent = container.agent(container.settings)
        agent.resume()
        agent.start(("0.2",))
        assert agent.run_feed(eth[:250], batch_size=50) == 50
        agent.stop("done")
        assert all(b"recorded_at" in split_state(n.state)[1] for n in container.feed.scan_stored(after=head))
    assert cli(store_url, "reproduce")[0] == 0


def open_store_for(url: str) -> LedgerStore:
    return LedgerStore(env=store_environment(url))


def log_over(store: LedgerStore, url: str) -> EventLog:
    return EventLog(store, create_db_engine(url))


# -- the agent ---------------------------------------------------------------------------


def test_a_write_around_the_lease_stops_the_agent_and_records_nothing_of_its_tick(sqlite_url: str,
                                                                                    eth: list[Candle]) -> None:
    """Only the lease holder writes the Account and Market streams: an append that conflicts means someone
    wrote around it, and the agent stops instead of deciding again on someone else's state."""
    with composed(trading_settings(sqlite_url)) as container:
        agent = container.agent(container.settings)
        agent.resume()
        agent.start(("test",))
        other = open_store_for(sqlite_url)
        other.save(Market.list(eth[0].symbol, eth[0].timeframe, at=eth[0].open_time))
        other.close()
        with pytest.raises(AgentError, match="another writer appended to the agent's streams"):
            agent.run_feed(eth[:20], batch_size=20)
        agent.stop("failed", clean=False)
    log = log_of(sqlite_url)
    assert [r["type"] for r in log if r["type"] in ("Opened", "CandleClosed")] == []
    assert cli(sqlite_url, "verify")[0] == 0 and cli(sqlite_url, "reproduce")[0] == 0


# -- the export ---------------------------------------------------------------------------


def test_the_export_carries_both_times(backtested: str, backtest_log: list[dict[str, Any]], tmp_path: Path) -> None:
    code, _ = cli(backtested, "export", "--out", str(tmp_path), "--format", "parquet")
    assert code == 0
    events = pl.read_parquet(tmp_path / "events.parquet")
    log = backtest_log
    assert events["position"].to_list() == [r["position"] for r in log]
    assert events["at"].to_list() == [time_of(r, "at") for r in log]
    assert events["recorded_at"].to_list() == [time_of(r, "recorded_at") for r in log]
    recorded = dict(zip(events["position"].to_list(), events["recorded_at"].to_list()))
    for name in ("fills", "signals"):
        frame = pl.read_parquet(tmp_path / f"{name}.parquet")
        assert frame.height and frame["recorded_at"].to_list() == [recorded[p] for p in frame["position"]]
