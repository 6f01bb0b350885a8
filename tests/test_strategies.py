"""User strategies (docs/strategies.md): loaded from the user's file, run through the same Trader, recorded.

The SMA cross is taken from the documentation page itself, so the page is what is tested: on real ETH/BTC
candles it must make exactly the built-in sma_cross's trades, and a one-line change of the file must make
`reproduce` refuse the store, naming the file digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.composing import composed
from tests.conftest import CANDLES, ROOT
from tradeledger.adapters.cli import main
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services import backtest, readmodels
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.settings import load_settings

ETH = CANDLES / "ETH_BTC-5m.csv"  # 5760 candles, no gaps
XRP = CANDLES / "XRP_ETH-5m.json"  # 706 candles
PAGE = ROOT / "docs" / "strategies.md"


def documented_sma_cross() -> str:
    """The last python block of docs/strategies.md: the SMA-cross example."""
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)[-1]


def cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue(), capsys.readouterr().err.splitlines()


def error_line(code: int, err: list[str]) -> str:
    """The command's one-line error (after the data report's lines, which backtest prints first)."""
    assert code == 2, err
    errors = [line for line in err if line.startswith("tradeledger ")]
    assert len(errors) == 1 and err[-1] == errors[0] and not any("Traceback" in line for line in err), err
    return errors[0]


def trades(result: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(t["symbol"], t["entry_time"], t["exit_time"], t["entry_price"], t["exit_price"], t["quantity"])
            for t in result["closed_trades"]]


def write(tmp_path: Path, source: str, name: str = "strategy.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def test_the_documented_sma_cross_makes_exactly_the_built_in_trades_and_a_changed_line_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELEDGER_PREDICTOR__FAST", "12")  # the built-in's lengths (and the data-quality window)
    monkeypatch.setenv("TRADELEDGER_PREDICTOR__SLOW", "26")
    strategy = write(tmp_path, documented_sma_cross(), "my_sma.py")
    built_in, mine = f"sqlite:///{tmp_path / 'built_in.sqlite'}", f"sqlite:///{tmp_path / 'mine.sqlite'}"

    code, out, err = cli("--database", built_in, "backtest", "--json", "--data", str(ETH), "--predictor", "sma_cross",
                         capsys=capsys)
    assert code == 0, err
    expected = json.loads(out)
    code, out, err = cli("--database", mine, "backtest", "--json", "--data", str(ETH),
                         "--strategy", f"{strategy}:SmaCross", "--param", "fast=12", "--param", "slow=26",
                         capsys=capsys)
    assert code == 0, err
    got = json.loads(out)
    assert len(trades(expected)) > 50
    assert trades(got) == trades(expected)
    assert got["final_equity"] == expected["final_equity"]

    code, out, err = cli("--database", mine, "reproduce", "--strategy", f"{strategy}:SmaCross", capsys=capsys)
    assert code == 0, (out, err)
    assert out.startswith("OK: 5760 candles replayed")

    source = strategy.read_text()
    changed = source.replace("fast = 10  # candles in the fast average", "fast = 10  # the fast average's length")
    assert changed != source
    strategy.write_text(changed)
    code, out, err = cli("--database", mine, "reproduce", "--strategy", f"{strategy}:SmaCross", capsys=capsys)
    assert code == 1, (out, err)
    assert len(err) == 1 and err[0].startswith("tradeledger reproduce: the recorded history was decided by other code")
    assert "strategy.digest recorded" in err[0]
    assert "strategy.name" not in err[0] and "strategy.params" not in err[0]  # only the file differs


def test_what_a_strategy_run_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The file's digest, name, version and every parameter in AgentRun.Started; the name and version in
    every signal. A settings file's [strategy.params] are merged with --param, the CLI winning."""
    strategy = write(tmp_path, documented_sma_cross())
    settings = write(tmp_path, f'[strategy]\npath = "{strategy}:SmaCross"\n[strategy.params]\nfast = 5\nslow = 30\n',
                     "settings.toml")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    code, _, err = cli("--settings", str(settings), "--database", url, "backtest", "--data", str(XRP),
                       "--param", "fast=8", capsys=capsys)
    assert code == 0, err
    run_settings = load_settings(overrides={"database.url": url}, environ={})
    with composed(run_settings) as container:
        started = container.feed.first(AgentRun.Started).event
        signals = [r.event for r in scan(container.feed, types=[Market.SignalGenerated])]
    config = started.decision_config
    assert config["strategy.digest"] == hashlib.sha256(strategy.read_bytes()).hexdigest()
    assert (config["strategy.name"], config["strategy.version"]) == ("my_sma_cross", "1")
    assert json.loads(config["strategy.params"]) == {"fast": "8", "slow": "30"}
    assert started.model == "my_sma_cross 1 (strategy)"
    assert len(signals) == 706
    assert {(s.model_name, s.model_version) for s in signals} == {("my_sma_cross", "1")}
    assert not any(s.is_actionable for s in signals[:30])  # lookback = slow + 1 = 31


def run_strategy(tmp_path: Path, source: str, candles: int, **strategy: Any) -> list[Market.SignalGenerated]:
    """Backtest the first `candles` ETH/BTC candles with the strategy `source` (class S); its signals."""
    path = write(tmp_path, source)
    overrides = {"database.url": f"sqlite:///{tmp_path / 'ledger.sqlite'}", "strategy.path": f"{path}:S",
                 **{f"strategy.{key}": value for key, value in strategy.items()}}
    settings = load_settings(overrides=overrides, environ={})
    with composed(settings) as container:
        backtest.run(container.agent(settings), container.feed, load_candles(ETH).candles[:candles], batch_size=100)
        return [r.event for r in scan(container.feed, types=[Market.SignalGenerated])]


def test_the_signals_read_model_and_api_view_show_the_strategys_failure(tmp_path: Path) -> None:
    source = """
class S:
    name, version, lookback = "fails_last", "1", 1
    calls = 0
    def decide(self, history):
        self.calls += 1
        if self.calls == 30:
            raise ValueError("the thirtieth candle")
        return "hold"
"""
    signals = run_strategy(tmp_path, source, 30)
    settings = load_settings(overrides={"database.url": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}, environ={})
    with composed(settings) as container:
        readmodels.rebuild(container.feed, container.engine, ["signals"])
        (latest,) = container.read_models.signals()
    assert latest.error == signals[-1].error == "decide raised ValueError: the thirtieth candle"
    assert latest.prediction.value == "hold" and msgspec.to_builtins(latest)["error"] == latest.error


def test_the_history_is_the_closed_candles_up_to_the_one_that_just_closed(tmp_path: Path) -> None:
    source = """
class S:
    name, version, lookback = "spy", "1", 3
    def decide(self, history):
        assert len(history) == self.lookback and len(history.open) == len(history.volume) == 3
        assert type(history.close) is tuple
        return "up" if history.close[-1] > history.close[-2] else "down"
"""
    signals = run_strategy(tmp_path, source, 60)
    closes = [c.close for c in load_candles(ETH).candles[:60]]
    assert [s.prediction.value for s in signals[:2]] == ["hold", "hold"]  # not asked before 3 candles closed
    # Each decision is about the candle that just closed and the ones before it, never the next one.
    assert [s.prediction.value for s in signals[2:]] == [
        "up" if closes[t] > closes[t - 1] else "down" for t in range(2, 60)]
    assert not any(s.error for s in signals)


def test_a_raising_strategy_records_holds_with_the_error_and_the_run_completes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = """
class S:
    name, version, lookback = "fragile", "2", 1
    calls = 0
    def decide(self, history):
        self.calls += 1
        if self.calls % 10 == 0:
            raise ZeroDivisionError("no luck on call %d" % self.calls)
        return "up", 0.75
"""
    with caplog.at_level(logging.WARNING, logger="tradeledger.adapters.strategies"):
        signals = run_strategy(tmp_path, source, 100)
    assert len(signals) == 100  # every candle decided, none skipped
    failed = [s for s in signals if s.error]
    assert [signals.index(s) for s in failed] == list(range(9, 100, 10))
    assert all(s.prediction.value == "hold" and s.confidence == 0 and not s.is_actionable for s in failed)
    assert failed[0].error == "decide raised ZeroDivisionError: no luck on call 10"
    assert {(s.prediction.value, s.confidence) for s in signals if not s.error} == {("up", 0.75)}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 10
    assert f"failed on ETH/BTC 5m {failed[0].candle_time.isoformat()}" in warnings[0]


@pytest.mark.parametrize("answer", ["'buy'", "('up', 1.5)", "('up', float('nan'))", "None", "1", "('up',)",
                                    "('sell', 0.5)", "['up', 0.5]", "('up', True)"])
def test_an_answer_outside_the_contract_is_a_recorded_hold(tmp_path: Path, answer: str) -> None:
    source = f"""
class S:
    name, version, lookback = "odd", "1", 1
    def decide(self, history):
        return {answer}
"""
    signals = run_strategy(tmp_path, source, 3)
    assert [s.prediction.value for s in signals] == ["hold"] * 3
    assert all(s.error.startswith("decide returned ") and "expected 'up', 'down', 'hold'" in s.error
               for s in signals), signals[0].error


def test_a_decide_slower_than_the_timeout_is_a_recorded_hold(tmp_path: Path) -> None:
    source = """
import time
class S:
    name, version, lookback = "slow", "1", 1
    calls = 0
    def decide(self, history):
        self.calls += 1
        if self.calls == 2:
            started = time.perf_counter()
            while time.perf_counter() - started < 0.05:
                pass
        return "up"
"""
    signals = run_strategy(tmp_path, source, 3, timeout=0.02)
    assert [s.prediction.value for s in signals] == ["up", "hold", "up"]
    assert re.fullmatch(r"decide took 0\.\d{3} s, more than strategy\.timeout 0\.02 s", signals[1].error)


def test_a_resumed_store_refuses_other_parameters_naming_them(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    strategy = write(tmp_path, documented_sma_cross())
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    base = ("--database", url, "backtest", "--data", str(XRP), "--strategy", f"{strategy}:SmaCross")
    assert cli(*base, capsys=capsys)[0] == 0
    assert cli(*base, capsys=capsys)[0] == 0  # the same code continues (nothing new to record)
    line = error_line(*cli(*base, "--param", "slow=21", capsys=capsys)[::2])
    assert """strategy.params recorded '{"fast": "10", "slow": "20"}', now '{"fast": "10", "slow": "21"}'""" in line
    line = error_line(*cli("--database", url, "reproduce", capsys=capsys)[::2])
    assert "decided by the strategy my_sma_cross 1" in line and "pass --strategy" in line


GOOD = """
class S:
    name, version, lookback = "s", "1", 2
    fast, ratio, label, flag = 10, __import__("decimal").Decimal("0.5"), "x", False
    def decide(self, history):
        return "hold"
"""


@pytest.mark.parametrize(("source", "args", "fragments"), [
    (None, (), ("strategy file", "missing.py cannot be read")),
    ("class T: pass\n", (), ("has no class S", "classes in it: T")),
    ("class S:\n    name = 'x'\n", (), ("has no version, lookback, decide",)),
    ("class S(\n", (), ("cannot be loaded: SyntaxError",)),
    ("import not_a_module_anywhere\n", (), ("cannot be loaded: ModuleNotFoundError",)),
    ("class S:\n    name, version, lookback, decide = 'x', '1', 0, print\n", (), ("lookback must be an integer",)),
    ("class S:\n    name, version, lookback, decide = '', '1', 5, print\n", (), ("name must be a non-empty string",)),
    ("class S:\n    name, version, lookback, decide = 'x', '1', 5, 'no'\n", (), ("decide must be a method",)),
    (GOOD, ("--param", "fats=3"), ("has no parameter 'fats'", "its parameters: fast, ratio, label, flag")),
    (GOOD, ("--param", "fast=1.5"), ("parameter fast: expected an integer (its default is 10), got '1.5'",)),
    (GOOD, ("--param", "ratio=abc"), ("parameter ratio: expected a decimal",)),
    (GOOD, ("--param", "flag=maybe"), ("parameter flag: expected true or false",)),
    (GOOD, ("--param", "fast"), ("--param: expected NAME=VALUE",)),
])
def test_an_unusable_strategy_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    source: str | None, args: Sequence[str],
                                                    fragments: Sequence[str]) -> None:
    path = tmp_path / "missing.py" if source is None else write(tmp_path, source)
    code, _, err = cli("--database", f"sqlite:///{tmp_path / 'ledger.sqlite'}", "backtest", "--data", str(XRP),
                       "--strategy", f"{path}:S", *args, capsys=capsys)
    line = error_line(code, err)
    assert line.startswith("tradeledger backtest: ")
    for fragment in fragments:
        assert fragment in line, line


def test_a_strategy_option_that_is_not_file_and_class_is_refused_before_anything_opens(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli("--database", f"sqlite:///{tmp_path / 'ledger.sqlite'}", "backtest", "--data", str(XRP),
                       "--strategy", "strategy.txt", capsys=capsys)
    assert code == 2 and err == ["tradeledger backtest: --strategy: expected FILE.py:ClassName, got strategy.txt"]
    assert not (tmp_path / "ledger.sqlite").exists()
