"""Limit entries and signal exits (docs/exits.md), on real ETH/BTC candles through `backtest`: every limit fill
is at its level or a better open, inside the candle, on a candle after the order; unreached ones time out."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tradeledger.domain.orders import touch_price
from tradeledger.domain.values import Candle, OrderType, Side
from tests.exitruns import FIVE_MINUTES, TICK, audited, backtest, cli

LIMITS = """
[trading]
entry_order = "limit"
exit_order = "limit"
limit_offset_bps = "10"
order_timeout_candles = 2
"""
OFFSET = Decimal("0.001")  # 10 bps


def test_limit_orders_fill_at_their_level_or_a_better_open_within_the_timeout_or_are_cancelled(tmp_path: Path
                                                                                               ) -> None:
    run = backtest(tmp_path, LIMITS)
    placed = run.placed
    assert {e.order_type for e in placed.values()} == {OrderType.LIMIT}, "entries and signal exits alike"
    for order in placed.values():
        signal_close = run.candle_at(order.timestamp - FIVE_MINUTES).close
        away = 1 - OFFSET if order.side is Side.BUY else 1 + OFFSET
        assert order.limit_price == (signal_close * away).quantize(TICK)
    for fill in run.fills:
        order, candle = placed[fill.order_id], run.candle_at(fill.filled_at)
        waited = [c for c in run.candles if order.timestamp <= c.open_time < fill.filled_at]
        assert len(waited) <= 1, "filled within two candles of the order"
        level = order.limit_price
        if fill.side is Side.BUY:
            assert candle.low <= level and fill.price == min(candle.open, level)
            assert all(c.low > level for c in waited), "not filled on an earlier candle that reached it"
        else:
            assert candle.high >= level and fill.price == max(candle.open, level)
            assert all(c.high < level for c in waited)
        assert candle.low <= fill.price <= candle.high
    timed_out = [c for c in run.cancels if "not reached in 2 candles" in c.reason]
    for cancel in timed_out:
        order = placed[cancel.order_id]
        waited = [c for c in run.candles if order.timestamp <= c.open_time < cancel.timestamp]
        assert len(waited) == 2 and cancel.timestamp == waited[-1].close_time
        reached = [c.low <= order.limit_price if order.side is Side.BUY else c.high >= order.limit_price
                   for c in waited]
        assert not any(reached)
    sides = {placed[c.order_id].side for c in timed_out}
    assert len(run.fills) > 100 and sides == {Side.BUY, Side.SELL}
    assert len(timed_out) == len(placed) - len(run.fills), "every unfilled order timed out"
    audited(run)
    code, shown = cli("--database", run.url, "explain", str(run.fills[0].order_id))
    assert code == 0 and f"price = the limit level {placed[run.fills[0].order_id].limit_price}, or the open" in shown


def test_a_limit_offset_of_zero_still_never_fills_a_buy_above_the_signal_close(tmp_path: Path) -> None:
    run = backtest(tmp_path, '[trading]\nentry_order = "limit"\n')
    buys = [f for f in run.fills if f.side is Side.BUY]
    assert buys and all(f.price <= run.placed[f.order_id].limit_price for f in buys)
    assert {run.placed[f.order_id].order_type for f in run.fills if f.side is Side.SELL} == {OrderType.MARKET}


def test_a_limit_entry_filled_inside_its_candle_takes_no_profit_in_that_candle(tmp_path: Path) -> None:
    """Part of that candle traded before the fill, its high maybe: assuming the take-profit came after would
    flatter the strategy. A stop there is still assumed (the conservative side)."""
    run = backtest(tmp_path, '[trading]\nentry_order = "limit"\n[exits]\ntake_profit_percent = "0.3"\n')
    spared = 0
    for trip in run.trips():
        entry_candle = run.candle_at(trip.entry.filled_at)
        if trip.entry.price != entry_candle.open:  # below the open: filled inside
            assert trip.exit.filled_at > trip.entry.filled_at
            spared += entry_candle.high >= (trip.entry.price * Decimal("1.003")).quantize(TICK)
    assert spared >= 1, "an entry candle whose high reached the take-profit"
    audited(run)


PRICES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("10"), places=6)
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@given(st.lists(PRICES, min_size=5, max_size=5), st.sampled_from([(OrderType.LIMIT, Side.BUY),
                                                                  (OrderType.LIMIT, Side.SELL),
                                                                  (OrderType.STOP, Side.SELL)]))
def test_a_limit_or_stop_never_fills_outside_the_candle_nor_worse_than_its_level(prices, kind) -> None:
    low, open_, close, high = sorted(prices[:4])[0], prices[1], prices[2], sorted(prices[:4])[-1]
    open_, close = min(max(open_, low), high), min(max(close, low), high)
    candle = Candle(symbol="X/Y", timeframe="5m", open_time=T0, open=open_, high=high, low=low, close=close,
                    volume=Decimal(1)).check()
    order_type, side = kind
    level = prices[4]
    price = touch_price(order_type, side, level, candle)
    if price is None:
        assert (level < low) if (order_type, side) != (OrderType.LIMIT, Side.SELL) else (level > high)
        return
    assert low <= price <= high
    if order_type is OrderType.LIMIT:
        assert price <= level if side is Side.BUY else price >= level, "a limit fills at its level or better"
    else:
        assert price <= level, "a sell stop fills at its level or the lower open"
