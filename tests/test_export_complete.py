"""The complete export (issue 12 point 4): every table's rows equal the log's events, in CSV and Parquet, and the
export is built from the log even when the read-model tables are empty or stale."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from tradeledger.adapters.database import create_db_engine
from tradeledger.adapters.eventlog import EventLog, scan
from tradeledger.adapters.eventstore import open_store
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tests.backtested import MARKUP_REASON, backtest_store, cli

NEW_TABLES = ("signal_history", "candles", "journal", "rejections", "halts", "account")


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'ledger.sqlite'}"
    backtest_store(url, 2000)
    return url


@pytest.fixture(scope="module")
def logged(backtested: str) -> list[Any]:
    """The log as (position, event, at, recorded_at), decoded by the one log reader."""
    store = open_store(backtested)
    engine = create_db_engine(backtested)
    try:
        return [(r.position, r.event, r.at, r.recorded_at) for r in scan(EventLog(store, engine))]
    finally:
        store.close()
        engine.dispose()


def exported(url: str, out: Path, fmt: str) -> dict[str, list[dict[str, Any]]]:
    code, _ = cli(url, "export", "--out", str(out), "--format", fmt)
    assert code == 0
    names = [p.stem for p in out.glob(f"*.{fmt}")]
    if fmt == "parquet":
        return {name: pl.read_parquet(out / f"{name}.parquet").to_dicts() for name in names}
    # CSV as text, so a decimal is compared digit for digit (no float in between)
    return {name: pl.read_csv(out / f"{name}.csv", infer_schema=False).to_dicts() for name in names}


def of(logged: list[Any], *types: type) -> list[Any]:
    return [entry for entry in logged if isinstance(entry[1], types)]


def time_text(value: Any) -> str:
    """A time as Parquet gives it (datetime) or CSV (text), in one spelling."""
    return str(pl.Series([value]).str.to_datetime(time_zone="UTC")[0] if isinstance(value, str) else value)


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_new_table_equals_the_log(backtested: str, logged: list[Any], tmp_path: Path, fmt: str) -> None:
    tables = exported(backtested, tmp_path, fmt)
    assert set(NEW_TABLES) <= set(tables)
    clocks = {p: (str(at), str(rec)) for p, _, at, rec in logged}
    for name in NEW_TABLES:  # every row names its event and carries that event's two clocks
        assert tables[name], f"{name} is empty"
        for row in tables[name]:
            assert (time_text(row["at"]), time_text(row["recorded_at"])) == clocks[int(row["position"])], (name, row)

    signals = of(logged, Market.SignalGenerated)
    assert [int(r["position"]) for r in tables["signal_history"]] == [p for p, *_ in signals]
    assert [dec(r["confidence"]) for r in tables["signal_history"]] == [dec(e.confidence) for _, e, *_ in signals]
    assert len(tables["signals"]) == 1, "`signals` stays the latest per market"

    candles = of(logged, Market.CandleClosed)
    assert [(int(r["position"]), dec(r["close"]), dec(r["volume"])) for r in tables["candles"]] == \
        [(p, e.close, e.volume) for p, e, *_ in candles]
    assert {r["symbol"] for r in tables["candles"]} == {"ETH/BTC"}

    lines: dict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    for row in tables["journal"]:
        assert dec(row["amount"]) == dec(row["debit"]) - dec(row["credit"])
        lines[int(row["position"])].append((row["ledger_account"], dec(row["amount"])))
    posted = of(logged, Account.Opened, Account.OrderFilled)
    assert sorted(lines) == [p for p, *_ in posted]
    for position, event, *_ in posted:
        assert lines[position] == [(line.account, line.amount) for line in event.journal], position
        assert sum(amount for _, amount in lines[position]) == 0, f"the journal of {position} balances"
    fills = {int(r["position"]) for r in tables["fills"]}
    assert fills == {p for p, e, *_ in posted if isinstance(e, Account.OrderFilled)}
    assert {r["order_id"] for r in tables["journal"] if r["event"] == "OrderFilled"} == \
        {str(e.order_id) for _, e, *_ in posted if isinstance(e, Account.OrderFilled)}

    placed = {str(e.order_id): p for p, e, *_ in of(logged, Account.OrderPlaced)}
    assert {r["order_id"]: int(r["position"]) for r in tables["orders"]} == placed
    assert all(time_text(r["recorded_at"]) == clocks[int(r["position"])][1] for r in tables["orders"])

    rejected = of(logged, Account.OrderRejected)
    assert [(int(r["position"]), r["rule"], r["reason"]) for r in tables["rejections"]] == \
        [(p, e.rule, e.reason) for p, e, *_ in rejected]

    halts = of(logged, Account.TradingHalted, Account.TradingResumed)
    assert [(int(r["position"]), r["action"], r["rule"], r["by"], r["reason"]) for r in tables["halts"]] == \
        [(p, "halted" if isinstance(e, Account.TradingHalted) else "resumed", getattr(e, "rule", None), e.by,
          e.reason) for p, e, *_ in halts]
    assert tables["halts"][-1]["reason"] == MARKUP_REASON
    assert [json.loads(r["metrics"]) for r in tables["halts"]] == [getattr(e, "metrics", {}) for _, e, *_ in halts]

    (account,) = tables["account"]
    (opened,) = of(logged, Account.Opened)
    assert (int(account["position"]), account["account"], account["quote_currency"], dec(account["initial_balance"])) \
        == (opened[0], opened[1].name, opened[1].quote_currency, opened[1].initial_balance)
    code, out = cli(backtested, "replay", "--position", str(logged[-1][0]), "--json")
    portfolio = json.loads(out)["account"]
    assert code == 0 and int(account["head_position"]) == logged[-1][0]
    for ours, theirs in (("cash", "cash"), ("equity", "equity"), ("gross_pnl", "realised_pnl"), ("fees", "fees")):
        assert dec(account[ours]) == dec(portfolio[theirs]), ours
    assert dec(account["net_pnl"]) == dec(account["gross_pnl"]) - dec(account["fees"])
    assert int(account["trades"]) == len(tables["trades"]) == portfolio["trades_closed"]


def test_the_export_is_built_from_the_log_not_the_read_model_tables(backtested: str, tmp_path: Path) -> None:
    fresh = exported(backtested, tmp_path / "fresh", "parquet")
    copy = tmp_path / "stale.sqlite"
    shutil.copy(backtested.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    assert cli(url, "rebuild")[0] == 0
    engine = create_db_engine(url)
    with engine.begin() as conn:  # stale and empty read models: a wrong account, no fills, no trades
        conn.execute(sa.text("UPDATE portfolio_accounts SET cash = '123', equity = '456'"))
        for table in ("portfolio_fills", "portfolio_trades", "portfolio_orders", "portfolio_equity", "signals_latest"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()
    again = exported(url, tmp_path / "stale", "parquet")
    assert again.keys() == fresh.keys()
    for name, rows in fresh.items():
        assert again[name] == rows, name
