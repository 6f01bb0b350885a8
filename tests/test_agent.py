"""The agent end to end on real candles: backtest, fills at the next open, reproduce, conflicts, resume."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tradeledger.adapters.services.trading import AgentError, TradingSession
from tradeledger.adapters.services.audit import verify_log
from tradeledger.adapters.cli import main
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import chain_digest, open_store, split_state
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.domain.values import Side
from tradeledger.settings import Settings, load_settings
from tests.agents import command, resumed, session
from tests.conftest import CANDLES

ETH = CANDLES / "ETH_BTC-5m.csv"


def settings_for(url: str, **overrides: str) -> Settings:
    return load_settings(overrides={"database.url": url, "predictor.name": "sma_cross", **overrides})


def open_log(url: str) -> EventLog:
    return EventLog(open_store(url), create_db_engine(url))


def close(log: EventLog) -> None:
    log.engine.dispose()
    log.store.close()


def started(log: EventLog, settings: Settings) -> TradingSession:
    agent = resumed(log, settings)
    agent.start(("test",))
    return agent


def events_of(log: EventLog, *types: type) -> list:
    return [r.event for r in scan(log, types=types)]


def stored_candles(log: EventLog) -> list:
    """(stored row, candle event) of every recorded candle."""
    rows = {row.position: row for row in log.scan_stored()}
    return [(rows[r.position], r.event) for r in scan(log, types=[Market.CandleClosed])]


@pytest.fixture(scope="module")
def eth_candles():
    return load_candles(ETH).candles


@pytest.mark.parametrize("predictor", ["sma_cross", "ensemble"])
def test_backtest_records_everything_then_verify_and_reproduce_pass(tmp_path, capsys, predictor) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    assert main(["--database", url, "backtest", "--data", str(ETH), "--predictor", predictor, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["candles"] == 5760 and result["trades"] > 10
    assert Decimal(result["final_equity"]) > 0 and Decimal(result["fees"]) > 0
    assert len(result["closed_trades"]) == result["trades"]
    trade = result["closed_trades"][0]
    assert {"symbol", "entry_time", "exit_time", "entry_price", "exit_price", "quantity", "pnl", "fees"} <= set(trade)
    assert trade["entry_time"] < trade["exit_time"]
    assert main(["--database", url, "verify"]) == 0
    assert main(["--database", url, "reproduce", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["candles"] == 5760


def test_orders_fill_at_the_next_candles_open_plus_slippage(sqlite_url, eth_candles) -> None:
    upgrade(sqlite_url)
    log = open_log(sqlite_url)
    settings = settings_for(sqlite_url)
    started(log, settings).run_feed(eth_candles[:2000], batch_size=500)
    opens = {c.open_time: c.open for c in eth_candles}
    placed = {e.order_id: e for e in events_of(log, Account.OrderPlaced)}
    fills = events_of(log, Account.OrderFilled)
    slip = settings.trading.slippage_bps / 10_000
    assert len(fills) > 10
    for fill in fills:
        direction = 1 if fill.side is Side.BUY else -1
        signal_candle = datetime.fromisoformat(placed[fill.order_id].signal_ref.split()[-1])
        assert fill.filled_at == signal_candle + timedelta(minutes=5), "filled at the open of the candle after"
        assert fill.price == (opens[fill.filled_at] * (1 + direction * slip)).quantize(Decimal("1e-10"))
        assert fill.fee == (fill.price * fill.quantity * settings.trading.fee_rate).quantize(Decimal("1e-12"))


def test_reproduce_names_the_first_divergence_when_an_input_was_altered(tmp_path, capsys, eth_candles) -> None:
    path = tmp_path / "ledger.sqlite"
    url = f"sqlite:///{path}"
    upgrade(url)
    log = open_log(url)
    started(log, settings_for(url)).run_feed(eth_candles[:600], batch_size=100)
    candles = stored_candles(log)
    close(log)
    notification, candle = next((n, c) for n, c in candles[300:] if c.close != c.low)
    digest, payload = split_state(notification.state)
    altered = payload.replace(f'"close":"{candle.close}"'.encode(), f'"close":"{candle.low}"'.encode())
    assert altered != payload
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (digest + altered, notification.position))

    assert main(["--database", url, "reproduce", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    divergence = report["divergence"]
    assert report["ok"] is False and divergence["stream"] == str(notification.stream)
    assert divergence["version"] == notification.version + 1, "the signal of the altered candle"
    assert divergence["kind"] == "signal" and divergence["event"] == "SignalGenerated"
    assert divergence["fields"] and all(f["field"].startswith("feature_values.") for f in divergence["fields"])
    assert all(f["recorded"] != f["reproduced"] for f in divergence["fields"])
    assert "SignalGenerated differs in" in divergence["message"]
    assert divergence["fields"][0]["field"] in divergence["message"]


def test_reproduce_reports_a_recorded_candle_it_cannot_process(tmp_path, capsys, eth_candles) -> None:
    path = tmp_path / "ledger.sqlite"
    url = f"sqlite:///{path}"
    upgrade(url)
    log = open_log(url)
    started(log, settings_for(url)).run_feed(eth_candles[:50], batch_size=100)
    notification, candle = stored_candles(log)[10]
    close(log)
    digest, payload = split_state(notification.state)
    broken = payload.replace(f'"high":"{candle.high}"'.encode(), b'"high":"0.00000001"')
    assert broken != payload
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (digest + broken, notification.position))
    assert main(["--database", url, "reproduce"]) == 1
    out = capsys.readouterr().out
    assert f"position {notification.position}" in out and "high" in out and "cannot be replayed" in out


def test_a_halt_issued_during_a_run_is_applied_by_the_agent_at_its_next_tick_and_reproduces(
        sqlite_url, eth_candles) -> None:
    upgrade(sqlite_url)
    log = open_log(sqlite_url)
    agent = started(log, settings_for(sqlite_url))
    agent.run_feed(eth_candles[:1500], batch_size=1)
    # The agent holds the lease, so the commands wait for it (wait=0: answered at once, pending).
    issued = [command(log, sqlite_url, "resume", reason="test", wait=0)] if agent.account.is_halted else []
    issued.append(command(log, sqlite_url, "halt", reason="operator", wait=0))
    assert {o.status for o in issued} == {"pending"}
    halt_position = log.head()

    agent.run_feed(eth_candles[1500:3000], batch_size=1)

    after = [(r.event, r.position) for r in scan(log, after=halt_position)]
    applied = [e for e, _ in after if isinstance(e, Account.CommandApplied)]
    assert [(e.command_id, e.command) for e in applied] == [(o.command_id, o.command) for o in issued]
    (halt,) = [e for e, _ in after if isinstance(e, Account.TradingHalted)][-1:]
    assert (halt.rule, halt.by, halt.reason) == ("manual", "api", "operator")
    buys = [e for e, _ in after if isinstance(e, Account.OrderPlaced) and e.side is Side.BUY]
    rejected = [e for e, _ in after if isinstance(e, Account.OrderRejected)]
    assert buys == [] and rejected and {r.rule for r in rejected} == {"manual"}
    assert verify_log(log).ok
    assert main(["--database", sqlite_url, "reproduce"]) == 0


def test_a_command_pending_when_the_agent_stops_is_applied_once_by_the_next_agent(sqlite_url, eth_candles) -> None:
    upgrade(sqlite_url)
    log = open_log(sqlite_url)
    first = started(log, settings_for(sqlite_url))
    first.run_feed(eth_candles[:200], batch_size=50)
    pending = command(log, sqlite_url, "resume" if first.account.is_halted else "halt", reason="late", wait=0)
    first.stop("test")
    second = started(log, settings_for(sqlite_url))
    second.run_feed(eth_candles[:400], batch_size=50)
    second.stop("test")
    third = started(log, settings_for(sqlite_url))
    third.run_feed(eth_candles[:600], batch_size=50)
    handled = events_of(log, Account.CommandApplied, Account.CommandRefused)
    assert [(e.command_id, type(e)) for e in handled] == [(pending.command_id, Account.CommandApplied)]
    assert main(["--database", sqlite_url, "reproduce"]) == 0


def test_a_session_does_nothing_until_resumed(sqlite_url) -> None:
    upgrade(sqlite_url)
    log = open_log(sqlite_url)
    idle = session(log, settings_for(sqlite_url))
    assert log.head() == 0 and idle.account is None
    with pytest.raises(AgentError, match=r"resume\(\) the session first"):
        idle.start(("test",))
    assert log.head() == 0


def test_the_agent_refuses_to_continue_a_history_made_with_other_decision_settings(sqlite_url, eth_candles) -> None:
    upgrade(sqlite_url)
    log = open_log(sqlite_url)
    started(log, settings_for(sqlite_url)).run_feed(eth_candles[:100], batch_size=50)
    with pytest.raises(AgentError, match="predictor.fast recorded '10', now '12'"):
        session(log, settings_for(sqlite_url, **{"predictor.fast": "12"})).resume()


def test_a_resumed_agent_records_nothing_twice(sqlite_url, eth_candles) -> None:
    upgrade(sqlite_url)
    log = open_log(sqlite_url)
    first = started(log, settings_for(sqlite_url))
    first.run_feed(eth_candles[:1000], batch_size=300)
    first.stop("test")
    second = started(log, settings_for(sqlite_url))
    assert second.run_feed(eth_candles[:2000], batch_size=300) == 1000, "only the new candles"
    times = [e.open_time for e in events_of(log, Market.CandleClosed)]
    assert times == [c.open_time for c in eth_candles[:2000]]


def test_chain_digest_covers_the_stream_position() -> None:
    from uuid import uuid4

    stream = uuid4()
    assert chain_digest(bytes(32), stream, 1, "t", b"x") != chain_digest(bytes(32), stream, 2, "t", b"x")
