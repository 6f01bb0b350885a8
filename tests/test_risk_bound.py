"""The drawdown bound, end to end: real backtests of every shared file stay within the limit plus one adverse move.

The bound. Equity is marked at every candle close (the curve the backtest's max
drawdown is read from), the drawdown rule is checked at the same closes, and its
halt sells the position at the next open. So every close before the first
drawdown halt is inside `max_drawdown_percent`, and after the exit the account
holds cash only and stays halted. The overshoot comes from the position's price
between the last close inside the limit and its exit:

    adverse move = max(r - x) / r x 100, over the prices x the position was
    marked or sold at from the breach candle through its exit: the breach
    candle's close (while still held) and every sell fill in the breach tick
    and the next one, net of the fee (price x (1 - fee_rate), slippage is in
    the price). r is the previous close if the position was held at it, else
    the cost of its entry at the breach candle's open (price x (1 + fee_rate)).
    Never below 0.

Because cash never goes negative, the position is at most the whole equity, so
its fall moves equity by at most the same percentage of the peak:

    max drawdown <= max_drawdown_percent + adverse move

The backtest reports the max drawdown to 0.01, so the test allows its rounding (0.005).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from tradeledger.adapters.services import backtest
from tradeledger.adapters.cli import main
from tradeledger.adapters.database import create_db_engine
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tradeledger.domain.risk import DRAWDOWN
from tradeledger.domain.values import Side
from scripts.bench_backtest import repeated_candles
from tradeledger.settings import Settings, load_settings
from tests.composing import composed
from tests.conftest import CANDLES

HUNDRED = Decimal(100)
REPORTED_ROUNDING = Decimal("0.005")
FILES = sorted(p for p in CANDLES.iterdir() if p.suffix in (".csv", ".json", ".parquet"))


class Tick(msgspec.Struct):
    close: Decimal
    events: list[object]  # the account events appended with this candle


class Exit(msgspec.Struct, frozen=True, kw_only=True):
    adverse_move_percent: Decimal
    held_at_breach: Decimal


def settings_for(url: str, predictor: str | None) -> Settings:
    chosen = {"predictor.name": predictor} if predictor else {}
    return load_settings(overrides={"database.url": url, **chosen})


def recorded_ticks(log: EventLogPort) -> list[Tick]:
    """The log cut into ticks: each candle with the account events appended after it."""
    ticks: list[Tick] = []
    for recorded in scan(log):
        if recorded.type is not Market.CandleClosed and not issubclass(recorded.type, Account.Event):
            continue  # not decoding the signals halves the time
        event = recorded.event
        if isinstance(event, Market.CandleClosed):
            ticks.append(Tick(close=event.close, events=[]))
        elif isinstance(event, Account.Event) and ticks:
            ticks[-1].events.append(event)
    return ticks


def backtested_file(url: str, predictor: str | None, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[
        Decimal, list[Tick]]:
    """`tradeledger backtest --data PATH` as a user runs it: its max drawdown and the ticks it recorded."""
    chosen = ["--predictor", predictor] if predictor else []
    assert main(["--database", url, "backtest", "--data", str(path), *chosen, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    store, engine = open_store(url), create_db_engine(url)
    try:
        ticks = recorded_ticks(EventLog(store, engine))
    finally:
        engine.dispose()
        store.close()
    assert len(ticks) == result["candles"]
    return Decimal(result["max_drawdown_percent"]), ticks


def fills(tick: Tick, side: Side) -> list[Account.OrderFilled]:
    return [e for e in tick.events if isinstance(e, Account.OrderFilled) and e.side is side]


def holdings(ticks: list[Tick]) -> list[Decimal]:
    """The position after each tick (one symbol per file)."""
    held, after = Decimal(0), []
    for tick in ticks:
        held += sum((f.quantity for f in fills(tick, Side.BUY)), Decimal(0))
        held -= sum((f.quantity for f in fills(tick, Side.SELL)), Decimal(0))
        after.append(held)
    return after


def drawdown_exit(ticks: list[Tick], t: int, fee_rate: Decimal) -> Exit:
    """The adverse move (module docstring) of the position held when the limit was hit at tick `t`."""
    held = holdings(ticks)
    bought = fills(ticks[t], Side.BUY)
    if t > 0 and held[t - 1] > 0:
        reference = ticks[t - 1].close
    elif bought:
        reference = bought[0].price * (1 + fee_rate)
    else:
        return Exit(adverse_move_percent=Decimal(0), held_at_breach=held[t])
    marks = [ticks[t].close] if held[t] > 0 else []
    marks += [f.price * (1 - fee_rate) for tick in ticks[t:t + 2] for f in fills(tick, Side.SELL)]
    worst = max((reference - x) / reference * HUNDRED for x in marks)
    return Exit(adverse_move_percent=max(worst, Decimal(0)), held_at_breach=held[t])


def assert_within_the_bound(max_drawdown: Decimal, ticks: list[Tick], settings: Settings) -> Exit | None:
    limit = settings.risk.max_drawdown_percent
    breaches = [i for i, tick in enumerate(ticks)
                if any(isinstance(e, Account.TradingHalted) and e.rule == DRAWDOWN for e in tick.events)]
    if not breaches:
        assert max_drawdown <= limit, "no close reached the limit, so no point of the curve did"
        return None
    t = breaches[0]
    exit_ = drawdown_exit(ticks, t, settings.trading.fee_rate)
    assert max_drawdown <= limit + exit_.adverse_move_percent + REPORTED_ROUNDING, exit_
    if exit_.held_at_breach > 0:
        [order] = [e for e in ticks[t].events if isinstance(e, Account.OrderPlaced)]
        assert (order.side, order.reason, order.quantity) == (Side.SELL, DRAWDOWN, exit_.held_at_breach)
        if t + 1 < len(ticks):
            assert [f.order_id for f in fills(ticks[t + 1], Side.SELL)] == [order.order_id], "at the next open"
    later = ticks[t + 1:]
    assert holdings(ticks)[-1] == 0 or t + 1 == len(ticks), "the position was closed"
    assert not any(fills(tick, Side.BUY) for tick in later), "halted by the drawdown rule until a person resumes"
    return exit_


@pytest.mark.parametrize("predictor", [None, "sma_cross"], ids=["default", "sma_cross"])
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_shared_file_stays_within_the_drawdown_bound(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], path: Path, predictor: str | None) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    max_drawdown, ticks = backtested_file(url, predictor, path, capsys)
    assert_within_the_bound(max_drawdown, ticks, settings_for(url, predictor))


def test_a_100k_candle_backtest_halts_on_drawdown_exits_and_stays_within_the_bound(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    settings = settings_for(url, "sma_cross")
    with composed(settings) as container:  # the CLI's backtest path, on a series that is not a file
        result = backtest.run(container.agent(settings), container.feed, repeated_candles(103_680), batch_size=2000)
        ticks = recorded_ticks(container.feed)
    assert result.candles == len(ticks) == 103_680
    exit_ = assert_within_the_bound(result.max_drawdown_percent, ticks, settings)
    assert exit_ is not None and exit_.held_at_breach > 0, "the limit was hit holding a position, which was sold"
