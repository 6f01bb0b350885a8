"""Our metrics equal backtesting.py's on the same trades (issue 15's done-when).

The sma_cross backtest of the real ETH/BTC file (fees and slippage 0, all of the equity per entry) is run with
`tradeledger backtest`; its fills (from `tradeledger export`) then drive a backtesting.py Strategy that orders on
the candle before each of our fills, so backtesting.py fills at the same next opens with the same quantities
(`FractionalBacktest`: whole satoshi-sized units, our quantities have 8 places). Its `compute_stats` must
agree with our figures within 0.01 percentage points.
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from tests.conftest import CANDLES
from tests.test_metrics import cli_json

backtesting = pytest.importorskip("backtesting")
from backtesting import Strategy  # noqa: E402
from backtesting.lib import FractionalBacktest  # noqa: E402

DATA = CANDLES / "ETH_BTC-5m.csv"
UNIT = Decimal("1E-8")  # FractionalBacktest's default unit: one satoshi of the base currency
TOLERANCE = 0.01  # percentage points
COMPARED = {  # ours -> backtesting.py's
    "return_percent": "Return [%]", "win_rate_percent": "Win Rate [%]", "expectancy_percent": "Expectancy [%]",
    "exposure_percent": "Exposure Time [%]", "buy_and_hold_percent": "Buy & Hold Return [%]",
}


def their_stats(fills: pl.DataFrame) -> Any:
    frame = pd.read_csv(DATA, parse_dates=["date"]).set_index("date")
    frame.columns = [c.capitalize() for c in frame.columns]
    times = list(frame.index)
    before = {times[i + 1]: times[i] for i in range(len(times) - 1)}  # the candle each fill's order was placed on
    orders: dict[pd.Timestamp, tuple[str, int]] = {}
    for side, quantity, at in fills.select("side", "quantity", "filled_at").iter_rows():
        units = Decimal(quantity) / UNIT
        assert units == units.to_integral_value(), "a quantity finer than the unit would not be replayed exactly"
        placed_on = before[pd.Timestamp(at)]
        assert placed_on not in orders, "one fill a candle: each is one order of the replay"
        orders[placed_on] = (side, int(units))

    class Replay(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            pass

        def next(self) -> None:
            side, units = orders.get(self.data.index[-1], ("", 0))
            if side == "buy":
                self.buy(size=units)
            elif side == "sell":
                self.position.close()

    run = FractionalBacktest(frame, Replay, cash=1.0, commission=0, fractional_unit=float(UNIT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some trades remain open": as ours, they are no trades yet
        return run.run()


def test_our_metrics_equal_backtesting_pys_on_the_same_trades(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[trading]\nposition_size = "1"\ninitial_balance = "1"\n')
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    result = cli_json(url, "--settings", str(settings), "backtest", "--data", str(DATA), "--predictor", "sma_cross",
                      "--fee", "0", "--slippage-bps", "0")
    ours = result["metrics"]
    assert cli_json(url, "export", "--out", str(tmp_path / "export"), "--format", "parquet")
    fills = pl.read_parquet(tmp_path / "export" / "fills.parquet")
    assert fills["fee"].cast(pl.Float64).sum() == 0 and len(fills) > 100
    theirs = their_stats(fills)
    assert ours["trades"] == theirs["# Trades"] == result["trades"]
    for name, their_name in COMPARED.items():
        assert ours[name] == pytest.approx(theirs[their_name], abs=TOLERANCE), name
    assert ours["max_drawdown"]["percent"] == pytest.approx(-theirs["Max. Drawdown [%]"], abs=TOLERANCE)
    assert ours["profit_factor"] == pytest.approx(theirs["Profit Factor"], abs=TOLERANCE / 100)
    # Beyond the done-when: the trade-return and ratio figures follow the same definitions.
    assert ours["sqn"] == pytest.approx(theirs["SQN"], rel=1e-6)
    for name, their_name in (("best_trade_percent", "Best Trade [%]"), ("worst_trade_percent", "Worst Trade [%]"),
                             ("avg_trade_percent", "Avg. Trade [%]"), ("cagr_percent", "CAGR [%]"),
                             ("sharpe", "Sharpe Ratio"), ("sortino", "Sortino Ratio"), ("calmar", "Calmar Ratio")):
        assert ours[name] == pytest.approx(theirs[their_name], rel=1e-4), name
