"""Exits that protect a position (docs/exits.md), on real ETH/BTC candles through `backtest`: each exit's fill
recomputed here from the candles and the entry fill, and every candle before it shown not to have triggered it."""

from __future__ import annotations

import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa
from alembic import command

from tradeledger.adapters.database import create_db_engine
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services import backtest as backtest_service
from tradeledger.domain.values import OrderType
from tradeledger.settings import load_settings
from tests.apisupport import project, serving
from tests.composing import composed
from tests.exitruns import ETH, SLIPPAGE, TICK, Run, Trip, audited, backtest, cli
from tests.test_projections_failures import migrate


DRAWDOWN = "max_drawdown_percent"  # the risk rule's exit can close a trip first in any of these runs


def reasons(run: Run) -> Counter[str]:
    """The exit reasons of the trips, checked against the trades that `backtest --json` lists."""
    trips = run.trips()
    assert [t["exit_reason"] for t in run.result["closed_trades"]] == [t.exit_order.exit_reason for t in trips]
    return Counter(t.exit_order.exit_reason for t in trips)


def stop_fill(run: Run, trip: Trip, level: Decimal) -> None:
    """A sell stop at `level` filled at it, or at the open when the candle opened below it."""
    candle = run.candle_at(trip.exit.filled_at)
    assert candle.low <= level and trip.exit.price == min(candle.open, level)
    assert trip.exit_order.order_type is OrderType.STOP and trip.exit_order.limit_price == level


def test_a_stop_loss_sells_two_percent_below_the_entry_fill_or_at_a_lower_open(tmp_path: Path) -> None:
    run = backtest(tmp_path, '[exits]\nstoploss_percent = "2"\n')
    for trip in run.trips():
        level = (trip.entry.price * Decimal("0.98")).quantize(TICK)
        assert all(c.low > level for c in run.held(trip)), "no earlier candle reached the stop"
        if trip.exit_order.exit_reason == "stoploss":
            stop_fill(run, trip, level)
    counted = reasons(run)
    assert counted["stoploss"] >= 3 and set(counted) <= {"signal", "stoploss", DRAWDOWN}
    audited(run)


def test_a_take_profit_sells_one_percent_above_the_entry_fill_or_at_a_higher_open(tmp_path: Path) -> None:
    run = backtest(tmp_path, '[exits]\ntake_profit_percent = "1"\n')
    for trip in run.trips():
        level = (trip.entry.price * Decimal("1.01")).quantize(TICK)
        assert all(c.high < level for c in run.held(trip)), "no earlier candle reached the take-profit"
        if trip.exit_order.exit_reason == "take_profit":
            candle = run.candle_at(trip.exit.filled_at)
            assert candle.high >= level and trip.exit.price == max(candle.open, level)
            assert trip.exit_order.order_type is OrderType.LIMIT and trip.exit_order.limit_price == level
    counted = reasons(run)
    assert counted["take_profit"] >= 3 and set(counted) <= {"signal", "take_profit", DRAWDOWN}
    audited(run)


def test_a_trailing_stop_follows_the_highest_close_since_the_entry(tmp_path: Path) -> None:
    run = backtest(tmp_path, '[exits]\ntrailing_stop_percent = "1.5"\n')
    raised = 0
    for trip in run.trips():
        highest = trip.entry.price  # the trail starts at the entry fill
        for candle in run.held(trip):
            assert candle.low > (highest * Decimal("0.985")).quantize(TICK)
            highest = max(highest, candle.close)
        if trip.exit_order.exit_reason == "trailing_stop":
            stop_fill(run, trip, (highest * Decimal("0.985")).quantize(TICK))
            raised += highest > trip.entry.price
    counted = reasons(run)
    assert counted["trailing_stop"] >= 3 and raised >= 1, "some trail rose above the entry before it was hit"
    audited(run)


ROI = {0: Decimal("1.5"), 30: Decimal("0.5"), 90: Decimal(0)}


def roi_reached(trip: Trip, candle) -> bool:
    """At this close: the profit since the entry fill reaches the table's entry for the minutes held."""
    minutes = (candle.close_time - trip.entry.filled_at).total_seconds() / 60
    target = ROI[max(m for m in ROI if m <= minutes)]
    return (candle.close / trip.entry.price - 1) * 100 >= target


def test_the_roi_table_sells_at_the_next_open_once_the_profit_for_the_time_held_is_reached(tmp_path: Path) -> None:
    run = backtest(tmp_path, '[exits]\nroi = { 0 = "1.5", 30 = "0.5", 90 = "0" }\n')
    for trip in run.trips():
        held = run.held(trip)
        reached = [c for c in held if roi_reached(trip, c)]
        if trip.exit_order.exit_reason == "roi":
            assert reached == [held[-1]], "the first close that reached it, and it alone"
            assert trip.exit_order.timestamp == held[-1].close_time
            opened = run.candle_at(trip.exit.filled_at).open
            assert trip.exit.price == (opened * (1 - SLIPPAGE)).quantize(TICK), "a market sell at the next open"
        else:  # the drawdown rule's exit, at a close, goes before the table's
            assert reached == [] or (trip.exit_order.exit_reason == DRAWDOWN and reached == [held[-1]])
    counted = reasons(run)
    assert counted["roi"] >= 3 and set(counted) <= {"signal", "roi", DRAWDOWN}
    audited(run)


def test_the_holding_limit_sells_at_the_open_after_the_sixth_close_held(tmp_path: Path) -> None:
    run = backtest(tmp_path, "[exits]\nmax_holding_candles = 6\n")
    for trip in run.trips():
        held = run.held(trip)
        if trip.exit_order.exit_reason == "max_holding":
            assert len(held) == 6 and trip.exit_order.timestamp == held[-1].close_time
        else:
            assert len(held) < 6 or (trip.exit_order.exit_reason == DRAWDOWN and len(held) == 6)
    counted = reasons(run)
    assert counted["max_holding"] >= 3 and set(counted) <= {"signal", "max_holding", DRAWDOWN}
    audited(run)


def test_when_the_stop_and_the_take_profit_fall_in_one_candle_the_stop_is_assumed_first(tmp_path: Path) -> None:
    run = backtest(tmp_path, '[exits]\nstoploss_percent = "0.4"\ntake_profit_percent = "0.4"\n')
    both = 0
    for trip in run.trips():
        stop = (trip.entry.price * Decimal("0.996")).quantize(TICK)
        take = (trip.entry.price * Decimal("1.004")).quantize(TICK)
        assert all(stop < c.low and c.high < take for c in run.held(trip))
        candle = run.candle_at(trip.exit.filled_at)
        if trip.exit_order.exit_reason in ("signal", DRAWDOWN):
            continue
        if candle.open >= take:  # the open is the first price: past the take-profit, that came first
            assert (trip.exit_order.exit_reason, trip.exit.price) == ("take_profit", candle.open)
        elif candle.low <= stop:
            both += candle.high >= take
            stop_fill(run, trip, stop)
        else:
            assert (trip.exit_order.exit_reason, trip.exit.price) == ("take_profit", max(candle.open, take))
    assert both >= 1, "a candle that reached both levels"
    audited(run)


def test_without_exits_every_sell_is_a_signal_exit_and_records_so(tmp_path: Path) -> None:
    run = backtest(tmp_path, "")
    sells = [e for e in run.placed.values() if e.side.value == "sell"]
    assert sells and all(e.exit_reason == (DRAWDOWN if e.reason == DRAWDOWN else "signal") for e in sells)
    assert {e.order_type for e in run.placed.values()} == {OrderType.MARKET}
    assert "signal" in reasons(run)


def test_a_stop_at_or_beyond_a_hundred_percent_is_a_settings_error_naming_it(tmp_path: Path, capsys) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[exits]\nstoploss_percent = "100"\n')
    code, _ = cli("--settings", str(path), "--database", f"sqlite:///{tmp_path / 'l.sqlite'}", "verify")
    error = capsys.readouterr().err.strip()
    assert code == 2 and "exits.stoploss_percent: expected a percent > 0 and < 100" in error


def test_the_api_shows_each_trades_exit_reason_and_each_stop_orders_level(tmp_path: Path) -> None:
    settings = load_settings(overrides={"database.url": f"sqlite:///{tmp_path / 'api.sqlite'}",
                                        "predictor.name": "sma_cross", "exits.stoploss_percent": "1"}, environ={})
    with composed(settings) as container:
        backtest_service.run(container.agent(settings), container.feed, load_candles(ETH).candles[:2000],
                             batch_size=500)
        project(container)
        with serving(container) as url, httpx.Client(base_url=url, timeout=30) as http:
            trades = http.get("/api/trades", params={"limit": 1000}).json()
            orders = http.get("/api/orders", params={"status": "filled", "limit": 1000}).json()
    stops = [o for o in orders if o["exit_reason"] == "stoploss"]
    assert stops and all(o["order_type"] == "stop" and Decimal(o["fill_price"]) <= Decimal(o["limit_price"])
                         for o in stops), "at the stop level or the lower open"
    assert Counter(t["exit_reason"] for t in trades)["stoploss"] == len(stops)
    assert {o["exit_reason"] for o in orders if o["side"] == "buy"} == {None}


def test_migration_0010_reads_the_trades_already_projected_as_their_events_say(tmp_path: Path) -> None:
    """Trades projected before 0010 get `signal`, or `max_drawdown_percent` for the drawdown rule's exits, as a
    fresh fold reads them; running the migration again changes nothing."""
    run = backtest(tmp_path, '[risk]\nmax_drawdown_percent = "1.5"\ncooldown_candles = 1\n')
    assert set(reasons(run)) == {"signal", DRAWDOWN}
    remigrated(run.url)
    assert exit_reasons(run.url) == [t["exit_reason"] for t in run.result["closed_trades"]]


def test_a_store_of_release_0_1_0_projected_before_0010_verifies_after_it(tmp_path: Path) -> None:
    """Its orders recorded no exit reason, so their rows keep none, and its trades read as signal exits."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    shutil.copy(Path(__file__).parent / "fixtures" / "store-0.1.0.sqlite", tmp_path / "ledger.sqlite")
    remigrated(url)
    assert set(exit_reasons(url)) == {"signal"}
    code, out = cli("--database", url, "verify")
    assert code == 0, out


def remigrated(url: str) -> None:
    """Projected, then the read models taken back to before 0010 and migrated again, twice: the second time as
    if a second starter had not seen the first one's upgrade. The later revisions' tables are left alone."""
    with composed(load_settings(overrides={"database.url": url}, environ={})) as container:
        container.runner().catch_up()
    head = migrated_to(url)
    for _ in range(2):
        migrate(url, command.stamp, "0010_exits")
        migrate(url, command.downgrade, "0009_feed")
        migrate(url, command.upgrade, "0010_exits")
        migrate(url, command.stamp, head)


def exit_reasons(url: str) -> list[str]:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.text("SELECT exit_reason FROM portfolio_trades ORDER BY seq"))]
    engine.dispose()
    return stored


def migrated_to(url: str) -> str:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return revision
