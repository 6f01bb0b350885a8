"""Many pairs in one account (docs/portfolios.md): a three-pair backtest of real files is one balanced ledger whose
trades per pair are the three single-pair backtests' when nothing binds, `trading.max_open_trades` binds, the
equity curve is the pairs' together, and the store reproduces and verifies, its files checked one by one."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path

import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_rows import EQUITY, TRADES
from tradeledger.projections.replay import replay
from tradeledger.projections.rows import MemoryTables
from tradeledger.settings import SettingsError, load_settings
from tests.composing import composed
from tests.conftest import CANDLES

PAIRS = [CANDLES / name for name in ("ETH_BTC-5m.csv", "LTC_BTC-5m.csv", "ADA_BTC-5m.csv")]  # ADA has gaps
INITIAL = Decimal(100)
# A fixed stake far below the balance, and no limit on losses in a row (which the pairs would share): each
# pair's decisions depend on its own candles alone, as in a backtest of that pair by itself.
INDEPENDENT = {"TRADELEDGER_PREDICTOR__NAME": "sma_cross", "TRADELEDGER_TRADING__STAKE_AMOUNT": "0.5",
               "TRADELEDGER_TRADING__INITIAL_BALANCE": str(INITIAL),
               "TRADELEDGER_RISK__MAX_CONSECUTIVE_LOSSES": "1000000"}


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def backtest(path: Path, files: list[Path], env: dict[str, str]) -> None:
    """Through the CLI, settings from the environment, as a user gives them."""
    data = [arg for file in files for arg in ("--data", str(file))]
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(io.StringIO()):
        for name, value in env.items():
            patch.setenv(name, value)
        assert main(["--database", url(path), "backtest", *data]) == 0


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The portfolio of three pairs, each pair alone, and the portfolio with max_open_trades = 1."""
    directory = tmp_path_factory.mktemp("portfolio")
    made = {"portfolio": directory / "portfolio.sqlite", "one_at_a_time": directory / "one.sqlite",
            **{file.name: directory / f"{file.stem}.sqlite" for file in PAIRS}}
    backtest(made["portfolio"], PAIRS, INDEPENDENT)
    for file in PAIRS:
        backtest(made[file.name], [file], INDEPENDENT)
    backtest(made["one_at_a_time"], PAIRS, {**INDEPENDENT, "TRADELEDGER_TRADING__MAX_OPEN_TRADES": "1"})
    yield made


def fills(path: Path) -> dict[str, list[tuple]]:
    """Every fill by symbol: (time, side, price, quantity, fee)."""
    with composed(load_settings(overrides={"database.url": url(path)}, environ={})) as root:
        found: dict[str, list[tuple]] = {}
        for r in scan(root.feed, types=[Account.OrderFilled]):
            e = r.event
            found.setdefault(e.symbol, []).append((e.timestamp, e.side.value, e.price, e.quantity, e.fee))
        return found


def tables(path: Path) -> MemoryTables:
    """The portfolio read model as a fresh fold of the log."""
    with composed(load_settings(overrides={"database.url": url(path)}, environ={})) as root:
        return replay(root.feed, projections=(PORTFOLIO,)).tables


def test_three_pairs_trade_in_one_ledger_exactly_as_each_pair_alone(stores: dict[str, Path], capsys) -> None:
    portfolio = fills(stores["portfolio"])
    assert set(portfolio) == {"ETH/BTC", "LTC/BTC", "ADA/BTC"}
    for file in PAIRS:
        (symbol, alone), = fills(stores[file.name]).items()
        assert len(alone) > 20 and portfolio[symbol] == alone, f"{symbol}: the same fills at the same times"
    trades = {(t.symbol, t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.quantity)
              for t in tables(stores["portfolio"]).rows(TRADES)}
    alone = {(t.symbol, t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.quantity)
             for file in PAIRS for t in tables(stores[file.name]).rows(TRADES)}
    assert trades == alone and len(trades) > 60
    assert main(["--database", url(stores["portfolio"]), "trial-balance"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].strip() == "total 0: balanced"


def test_the_equity_curve_is_every_pairs_result_together(stores: dict[str, Path]) -> None:
    def curve(path: Path) -> dict:
        return {row.time: row.equity for row in tables(path).rows(EQUITY)}

    portfolio = curve(stores["portfolio"])
    alone = [curve(stores[file.name]) for file in PAIRS]
    assert set(portfolio) == set().union(*alone), "a point at every candle time of any pair (ADA's gaps too)"
    last = [INITIAL] * len(alone)
    for time in sorted(portfolio):
        last = [c.get(time, previous) for c, previous in zip(alone, last)]  # a pair in a gap keeps its value
        assert portfolio[time] - INITIAL == sum(equity - INITIAL for equity in last), time


def test_max_open_trades_rejects_entries_while_that_many_trades_are_open(stores: dict[str, Path]) -> None:
    path = stores["one_at_a_time"]
    kinds = [Account.OrderPlaced, Account.OrderFilled, Account.OrderCancelled, Account.OrderRejected]
    with composed(load_settings(overrides={"database.url": url(path)}, environ={})) as root:
        events = [r.event for r in scan(root.feed, types=kinds)]
    rejected = [e for e in events if isinstance(e, Account.OrderRejected) and e.rule == "max_open_trades"]
    assert len(rejected) > 10 and all("trading.max_open_trades is 1" in e.reason for e in rejected)
    held: dict[str, Decimal] = {}
    entering: dict[object, str] = {}  # pending entries, which count as open trades
    for e in events:
        if isinstance(e, Account.OrderPlaced) and e.side.value == "buy":
            entering[e.order_id] = e.symbol
        elif isinstance(e, (Account.OrderFilled, Account.OrderCancelled)):
            entering.pop(e.order_id, None)
        if isinstance(e, Account.OrderFilled):
            held[e.symbol] = held.get(e.symbol, Decimal(0)) + (e.quantity if e.side.value == "buy" else -e.quantity)
        trades = {s for s, q in held.items() if q > 0} | set(entering.values())
        assert len(trades) <= 1, f"two trades open at {e.timestamp}: {trades}"
        if isinstance(e, Account.OrderRejected) and e.rule == "max_open_trades":
            (other,) = trades
            assert other != e.symbol and f"({other})" in e.reason
    assert len(fills(path)) == 3, "each pair still trades, one at a time"
    assert main(["--database", url(path), "reproduce"]) == 0, "the limit is recorded and decides the same again"


def test_the_portfolio_store_verifies_and_reproduces_with_every_file_checked(stores: dict[str, Path],
                                                                              tmp_path: Path, capsys) -> None:
    store = url(stores["portfolio"])
    assert main(["--database", store, "verify"]) == 0
    data = [arg for file in PAIRS for arg in ("--data", str(file))]
    capsys.readouterr()
    assert main(["--database", store, "reproduce", "--json", *data]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and [check["market"] for check in report["data_files"]] == ["ETH/BTC 5m", "LTC/BTC 5m",
                                                                                   "ADA/BTC 5m"]
    assert [check["recorded_candles"] for check in report["data_files"]] == [5760, 5760, 5720]
    with composed(load_settings(overrides={"database.url": store}, environ={})) as root:
        (started,) = [r.event for r in scan(root.feed, types=[AgentRun.Started])]
    assert [f.name for f in started.input_files()] == [file.name for file in PAIRS]
    assert (started.data_file, started.data_sha256) == ("", ""), "the one-file fields are left for one file"
    other = CANDLES / "DASH_BTC-5m.csv"
    assert main(["--database", store, "reproduce", "--json", *data[:2], "--data", str(other)]) == 1
    checks = json.loads(capsys.readouterr().out)["data_files"]
    assert checks[0]["ok"] and not checks[1]["ok"]
    assert any("a market this store does not trade" in finding for finding in checks[1]["findings"])


@pytest.mark.parametrize("args, named", [
    (["--data", str(PAIRS[0]), "--data", str(PAIRS[1]), "--symbol", "X/BTC"], "--symbol and --timeframe"),
    (["--data", str(PAIRS[0]), "--data", str(CANDLES / "ETH_BTC-5m.parquet")], "give one file per market"),
    (["--data", str(PAIRS[0]), "--data", str(CANDLES / "UNITTEST_BTC-1m.csv")], "a portfolio trades one timeframe"),
    (["--data", str(PAIRS[0]), "--data", str(CANDLES / "XRP_ETH-5m.json")], "quoted in different currencies"),
])
def test_files_that_cannot_make_one_portfolio_are_refused_in_one_line(tmp_path: Path, capsys, args: list[str],
                                                                      named: str) -> None:
    assert main(["--database", url(tmp_path / "refused.sqlite"), "backtest", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradeledger backtest: ") and named in err and err.count("\n") == 1, err


def test_a_directory_is_every_candle_file_in_it(tmp_path: Path, capsys) -> None:
    directory = tmp_path / "pairs"
    directory.mkdir()
    for file in PAIRS[:2]:
        (directory / file.name).write_text("".join(file.read_text().splitlines(keepends=True)[:301]))
    (directory / "notes.txt").write_text("not candles\n")
    assert main(["--database", url(tmp_path / "dir.sqlite"), "backtest", "--data", str(directory),
                 "--predictor", "sma_cross", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["candles"] == 600 and sorted(result["data_files"]) == sorted(f.name for f in PAIRS[:2])
    (tmp_path / "empty").mkdir()
    assert main(["--database", url(tmp_path / "empty.sqlite"), "backtest", "--data", str(tmp_path / "empty")]) == 2
    assert "a directory without candle files" in capsys.readouterr().err


def test_an_agent_replays_several_files_as_if_live_in_one_account(tmp_path: Path) -> None:
    files = []
    for file in PAIRS[:2]:
        files.append(tmp_path / file.name)
        files[-1].write_text("".join(file.read_text().splitlines(keepends=True)[:101]))
    store = url(tmp_path / "live.sqlite")
    data = [arg for file in files for arg in ("--data", str(file))]
    assert main(["--database", store, "agent", *data, "--predictor", "sma_cross"]) == 0, "the files end: it stops"
    with composed(load_settings(overrides={"database.url": store}, environ={})) as root:
        candles = [(r.stream, r.event.open_time) for r in scan(root.feed, types=[Market.CandleClosed])]
        markets = {r.stream: r.event.symbol for r in scan(root.feed, types=[Market.Listed])}
        (started,) = [r.event for r in scan(root.feed, types=[AgentRun.Started])]
        (opened,) = [r.event for r in scan(root.feed, types=[Account.Opened])]
    assert sorted(markets.values()) == ["ETH/BTC", "LTC/BTC"] and opened.quote_currency == "BTC"
    assert len(candles) == 200 and [f.name for f in started.input_files()] == [f.name for f in files]
    assert candles == sorted(candles, key=lambda c: (c[1], markets[c[0]])), "merged by time, then symbol"


@pytest.mark.parametrize("key, value, expected", [
    ("trading.stake_amount", "0", "a decimal from 1E-8 to 1E+12, or unset"),
    ("trading.max_open_trades", "0", "an integer from 1 to 1000000, or unset"),
])
def test_portfolio_settings_out_of_range_are_refused(key: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(expected)):
        load_settings(overrides={key: value}, environ={})


def test_an_entry_sized_by_the_stake_explains_the_stake_rule(stores: dict[str, Path], capsys) -> None:
    with composed(load_settings(overrides={"database.url": url(stores["portfolio"])}, environ={})) as root:
        position, order = next((r.position, r.event) for r in scan(root.feed, types=[Account.OrderPlaced])
                               if r.event.side.value == "buy")
    sizing = order.basis.sizing
    assert sizing.stake_amount == Decimal("0.5") and sizing.budget == Decimal("0.5")
    assert main(["--database", url(stores["portfolio"]), "explain", "--position", str(position)]) == 0
    assert "budget = min(stake_amount, cash) = min(0.5, " in capsys.readouterr().out
