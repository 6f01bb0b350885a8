"""`replay`, `export`, `health` and the read-model half of `verify`, as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
import sqlalchemy as sa

from tradeledger.adapters.cli import main
from tests.composing import composed
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog, decode
from tradeledger.adapters.eventstore import LedgerStore, open_store
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.projections import sql
from tradeledger.projections.fold import Recorded, apply_all
from tradeledger.projections.portfolio import PortfolioFold
from tradeledger.projections.portfolio_rows import ACCOUNTS, FILLS
from tradeledger.projections.portfolio_view import account_portfolio
from tradeledger.projections.rows import MemoryTables
from tradeledger.projections.signals import SIGNALS
from scripts.synthetic_history import HistoryBuilder
from tradeledger.settings import load_settings

Run = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(store_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str]:
        code = main(["--database", store_url, *args])
        return code, capsys.readouterr().out

    return run


def decoded_log(store: LedgerStore, url: str) -> list[Recorded]:
    """The log's raw rows, each decoded at once (not the lazy pages the projections read)."""
    engine = create_db_engine(url)
    try:
        return [Recorded(n.position, decode(n.topic, n.stream, n.version, n.state))
                for n in EventLog(store, engine).scan_stored()]
    finally:
        engine.dispose()


def expected_portfolio(events: list[Recorded]) -> Any:
    tables = MemoryTables()
    apply_all(PortfolioFold(tables), events)
    return json.loads(msgspec.json.encode(account_portfolio(tables.rows, "paper")))


def test_replay_at_a_position_or_a_time_is_the_fold_of_the_events_up_to_then(
        history_store: Callable[[int], LedgerStore], cli: Run, store_url: str) -> None:
    events = decoded_log(history_store(300), store_url)
    middle = events[len(events) // 2]
    code, out = cli("replay", "--position", str(middle.position), "--json")
    assert code == 0 and json.loads(out) == expected_portfolio([r for r in events if r.position <= middle.position])

    moment = middle.event.timestamp
    code, out = cli("replay", "--as-of", moment.isoformat(), "--json")
    assert code == 0 and json.loads(out) == expected_portfolio([r for r in events if r.event.timestamp <= moment])
    assert json.loads(out) != expected_portfolio(events), "an earlier portfolio than today's"

    code, out = cli("replay", "--as-of", moment.replace(tzinfo=None).isoformat())  # naive means UTC
    assert code == 0 and f"marked at {moment.isoformat()}" in out


def test_replay_refuses_ambiguous_or_bad_requests(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    upgrade(sqlite_url)  # `replay` only reads: it refuses a store that does not exist
    for args in ([], ["--position", "3", "--as-of", "2024-01-01T00:00:00Z"], ["--as-of", "yesterday"]):
        assert main(["--database", sqlite_url, "replay", *args]) == 2
    assert main(["--database", sqlite_url, "replay", "--position", "10"]) == 1, "no such account yet"
    assert "has no events" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_readable_files_with_exact_amounts(history_store: Callable[[int], LedgerStore], cli: Run,
                                                         store_url: str, tmp_path: Path, fmt: str) -> None:
    history_store(200)
    assert cli("rebuild")[0] == 0  # the tables to compare with: `export` folds afresh and writes no table
    code, _ = cli("export", "--out", str(tmp_path), "--format", fmt)
    assert code == 0
    read = pl.read_parquet if fmt == "parquet" else pl.read_csv
    frames = {name: read(tmp_path / f"{name}.{fmt}") for name in ("orders", "fills", "trades", "signals", "equity")}
    engine = create_db_engine(store_url)
    with engine.connect() as conn:
        rows = sql.row_source(conn)
        fills, signals = rows(FILLS), rows(SIGNALS)
    engine.dispose()
    assert len(fills) > 10 and frames["fills"].height == len(fills) and frames["signals"].height == len(signals)
    assert all(frame.height > 0 for frame in frames.values())
    fees = [Decimal(str(v)) for v in frames["fills"]["fee"].to_list()]
    assert fees == [f.fee for f in fills], "every digit of every fee"
    assert sum(fees) == sum(f.fee for f in fills)


def record(url: str, *aggregates: Any) -> None:
    upgrade(url)
    store = open_store(url)
    store.save(*aggregates)
    store.close()


def health(cli: Run) -> tuple[int, dict[str, Any]]:
    code, out = cli("health", "--json")
    return code, json.loads(out)


def test_health_exit_codes_follow_the_rule(store_url: str, cli: Run) -> None:
    upgrade(store_url)  # `health` only reads: it refuses a store that does not exist
    code, report = health(cli)
    assert (code, report["status"], report["agent"]["status"]) == (1, "degraded", "none")

    now = datetime.now(timezone.utc)
    run = AgentRun.start(key="live", version="1", host="h", pid=1, config_digest="d", components=("agent",),
                         model="m", decision_config={}, at=now - timedelta(seconds=2))
    run.beat(at=now, candles_processed=1, feed_lag=0.0)
    record(store_url, run)
    assert cli("rebuild")[0] == 0
    code, report = health(cli)
    assert (code, report["status"], report["agent"]["status"]) == (0, "healthy", "running")

    stale = AgentRun.start(key="stale", version="1", host="h", pid=2, config_digest="d", components=("agent",),
                           model="m", decision_config={}, at=now - timedelta(minutes=5))
    record(store_url, stale)
    code, report = health(cli)
    assert report["projections"][0]["lag"] == 1, "the newer run is not projected yet"
    assert cli("rebuild", "health")[0] == 0
    code, report = health(cli)
    assert (code, report["status"], report["agent"]["status"]) == (2, "unhealthy", "stale"), \
        "no heartbeat for 5 minutes at a 5 s interval"

    stale.stop(reason="done", clean=True, at=now)
    record(store_url, stale)
    assert cli("rebuild", "health")[0] == 0
    code, report = health(cli)
    assert (code, report["agent"]["status"]) == (1, "stopped")


def test_health_of_an_unreachable_store_is_unhealthy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database", "postgresql://postgres@127.0.0.1:1/none", "health"]) == 2
    assert "cannot open the database" in capsys.readouterr().err


def test_verify_names_the_first_read_model_row_that_differs(history_store: Callable[[int], LedgerStore],
                                                            cli: Run, store_url: str) -> None:
    store = history_store(100)
    assert cli("rebuild")[0] == 0
    HistoryBuilder(store, symbols=("XRP/BTC",), account="later", seed=5).extend(10)
    code, out = cli("verify")
    assert code == 0 and "portfolio: compared at position" in out and "(lag 0)" not in out, \
        "a lagging projection is compared at its own position"

    engine = create_db_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.update(ACCOUNTS.table).where(ACCOUNTS.table.c.account == "paper").values(cash="0.5"))
    engine.dispose()
    code, out = cli("verify", "--json")
    findings = json.loads(out)["findings"]
    assert code == 1
    assert (findings[0]["check"], findings[0]["stream"]) == ("projection", "portfolio/portfolio_accounts")
    assert "row paper" in findings[0]["message"] and "cash is 0.5" in findings[0]["message"]
    assert findings[1]["check"] == "reconcile" and "initial balance + realised PnL - fees" in findings[1]["message"]


def test_sessions_of_stopped_and_dead_gateways_are_closed(store_url: str, cli: Run) -> None:
    now = datetime.now(timezone.utc)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    here = socket.gethostname()
    stopped, dead, alive = (Gateway.start(key=key, kind="api", host=here, pid=pid, at=now) for key, pid in
                            (("stopped", 1), ("dead", int(gone.stdout)), ("alive", os.getpid())))
    for number, gateway in enumerate((stopped, dead, alive, alive)):
        gateway.connect_client(session_id=f"s{number}", channel="ws", peer="127.0.0.1", at=now)
    stopped.stop(reason="shutdown", at=now)
    record(store_url, stopped, dead, alive)
    assert cli("rebuild", "connections")[0] == 0
    assert health(cli)[1]["open_connections"] == 3, "the stopped gateway's session is closed"

    with composed(load_settings(overrides={"database.url": store_url}, environ={})) as container:
        assert container.dead_gateways.close() == [dead.id]
        container.runner().catch_up()
        assert container.dead_gateways.close() == [], "closed once, recorded once"
    assert health(cli)[1]["open_connections"] == 2, "only the live gateway's sessions stay open"
