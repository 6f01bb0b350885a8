"""`reproduce` that explains, on a real backtest of ETH/BTC 5m (the drawdown limit is reached): the structured diff,
`--all`, the settings warning, `--data FILE` and the what-if `--with KEY=VALUE`."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.services.trading import run_live
from tradeledger.settings import load_settings
from tests.composing import composed
from tests.forging import ETH, backtest_store, copy_of, replaced, rows, sha256, url  # noqa: F401 - fixture


def reproduce(store: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    code = main(["--database", url(store), "reproduce", "--json", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else {"stderr": captured.err}


def edit_signal(store: Path, index: int, confidence: str) -> tuple[int, float]:
    """Change the recorded confidence of the index-th signal (a decision, not an input): its position and the
    recorded value it had."""
    position, signal = [s for s in rows(store, "Market.SignalGenerated") if s[1]["confidence"] > 0][index]
    with sqlite3.connect(store) as db:
        state = db.execute("SELECT state FROM stored_events WHERE rowid=?", (position,)).fetchone()[0]
        edited = replaced(f'"confidence":{signal["confidence"]}', f'"confidence":{confidence}')(state)
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (edited, position))
    return position, signal["confidence"]


def test_a_divergence_names_the_differing_field_with_both_values(backtest_store: Path, tmp_path: Path,
                                                                 capsys) -> None:
    store = copy_of(backtest_store, tmp_path)
    position, confidence = edit_signal(store, 5, "0.123")
    code, report = reproduce(store, capsys)
    divergence = report["divergence"]
    assert code == 1 and divergence["position"] == position and divergence["kind"] == "signal"
    assert divergence["fields"] == [{"field": "confidence", "recorded": 0.123, "reproduced": confidence}]
    assert len(report["divergences"]) == 1, "stops at the first by default"
    assert main(["--database", url(store), "reproduce"]) == 1
    assert f"confidence: recorded 0.123, reproduced {confidence!r}" in capsys.readouterr().out


def test_all_goes_on_and_counts_every_divergence_by_kind(backtest_store: Path, tmp_path: Path, capsys) -> None:
    store = copy_of(backtest_store, tmp_path)
    positions = [edit_signal(store, index, "0.5")[0] for index in (3, 40, 80)]
    code, report = reproduce(store, capsys, "--all")
    assert code == 1 and report["every"] and report["counts"] == {"signal": 3}
    assert [d["position"] for d in report["divergences"]] == positions
    assert report["candles"] == 5760 and report["decisions"] > 1000, "the replay went on to the end"
    assert main(["--database", url(store), "reproduce", "--all"]) == 1
    assert capsys.readouterr().out.startswith("DIVERGED: 3 divergence(s) over 5760 candles (signal 3)")


def test_current_settings_that_differ_are_warned_about_and_ignored(backtest_store: Path, capsys,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELEDGER_TRADING__FEE_RATE", "0.005")
    code, report = reproduce(backtest_store, capsys)
    assert code == 0 and report["ok"]
    assert report["ignored_settings"]["trading.fee_rate"] == ["0.001", "0.005"]
    assert main(["--database", url(backtest_store), "reproduce"]) == 0
    warning = capsys.readouterr().err
    assert warning.startswith("warning:") and "trading.fee_rate recorded 0.001, now 0.005" in warning


def test_data_checks_the_recorded_file_digest_and_candles(backtest_store: Path, tmp_path: Path, capsys) -> None:
    code, report = reproduce(backtest_store, capsys, "--data", str(ETH))
    assert code == 0 and report["data"]["ok"] and report["data"]["recorded_sha256"] == [sha256(ETH)]
    assert report["data"]["recorded_candles"] == report["data"]["file_candles"] == 5760
    lines = ETH.read_text().splitlines(keepends=True)
    row = lines[101].rstrip("\n").split(",")  # the 101st candle
    other = tmp_path / ETH.name
    other.write_text("".join([*lines[:101], ",".join([*row[:5], "12345"]) + "\n", *lines[102:]]))
    code, report = reproduce(backtest_store, capsys, "--data", str(other))
    findings = report["data"]["findings"]
    assert code == 1 and not report["ok"] and len(findings) == 2
    assert sha256(ETH) in findings[0] and sha256(other) in findings[0]
    assert findings[1].startswith("recorded candle 101 (open ") and "volume recorded" in findings[1]
    assert "file 12345" in findings[1]


@pytest.mark.parametrize("path", ["missing.csv", "README"])
def test_an_unreadable_data_file_is_a_one_line_usage_error(backtest_store: Path, tmp_path: Path, capsys,
                                                           path: str) -> None:
    (tmp_path / "README").write_text("not candles\n")
    assert main(["--database", url(backtest_store), "reproduce", "--data", str(tmp_path / path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradeledger reproduce: ") and err.count("\n") == 1


def test_what_if_a_tighter_drawdown_limit_changes_the_outcome(backtest_store: Path, capsys) -> None:
    before = sha256(backtest_store)
    code, tighter = reproduce(backtest_store, capsys, "--with", "risk.max_drawdown_percent=10")
    assert code == 0 and tighter["settings"] == {"risk.max_drawdown_percent": ["20", "10"]}
    recorded, what_if = tighter["recorded"], tighter["what_if"]
    assert float(recorded["max_drawdown_percent"]) > 19.9, "the recorded run reached its 20% limit"
    assert float(what_if["max_drawdown_percent"]) < 11 and what_if["trades"] < recorded["trades"]
    assert what_if["final_equity"] != recorded["final_equity"]
    changed = tighter["changed"]
    assert changed is not None and changed["position"] is not None and changed["recorded"] != changed["what_if"]
    assert "halted by max_drawdown_percent" in changed["what_if"]
    assert sha256(backtest_store) == before, "nothing is written to the audited store"

    code, same = reproduce(backtest_store, capsys, "--with", "risk.max_drawdown_percent=20")
    assert code == 0 and same["recorded"] == same["what_if"] == recorded and same["changed"] is None


def test_what_if_text_puts_both_outcomes_side_by_side(backtest_store: Path, capsys) -> None:
    assert main(["--database", url(backtest_store), "reproduce", "--with", "trading.fee_rate=0.002"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("what-if over 5,760 recorded candles: trading.fee_rate 0.001 -> 0.002")
    labels = [line.split("  ")[0] for line in out[2:9]]
    assert labels == ["return %", "max drawdown %", "trades", "gross PnL", "fees", "net PnL", "final equity"]
    assert any(line.startswith("first changed decision at ") for line in out) and len(out) < 25


@pytest.mark.parametrize("override, named", [
    ("risk.max_drawdon_percent=5", "risk.max_drawdon_percent: unknown key (did you mean risk.max_drawdown_percent?)"),
    ("risk.max_drawdown_percent=-1", "risk.max_drawdown_percent: expected a decimal > 0"),
    ("trading.account=other", "trading.account: not a decision setting"),
    ("predictor.slow=3", "predictor.slow: expected an integer > predictor.fast"),
    ("fee_rate", "expected SECTION.KEY=VALUE"),
])
def test_a_bad_override_is_a_one_line_error_naming_the_key(backtest_store: Path, capsys, override: str,
                                                           named: str) -> None:
    assert main(["--database", url(backtest_store), "reproduce", "--with", override]) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1, err


def test_a_file_replay_records_its_input_file_which_data_then_checks(tmp_path: Path, capsys) -> None:
    data = tmp_path / "ETH_BTC-5m.csv"
    data.write_text("".join(ETH.read_text().splitlines(keepends=True)[:201]))  # the header and 200 candles
    store = tmp_path / "replay.sqlite"
    settings = load_settings(overrides={"database.url": url(store), "predictor.name": "sma_cross",
                                        "trading.update_interval": "0.001"}, environ={})
    with composed(settings) as container:
        _, paced = container.paced_settings(str(data))
        session = container.agent(paced)
        session.resume()
        run_live(session, paced, threading.Event(), data=str(data), components=("test",))
    (_, started), = rows(store, "AgentRun.Started")
    assert (started["data_file"], started["data_sha256"]) == (data.name, sha256(data))
    code, report = reproduce(store, capsys, "--data", str(data))
    assert code == 0 and report["data"]["recorded_candles"] == 200
    code, report = reproduce(store, capsys, "--data", str(ETH))
    assert code == 1 and len(report["data"]["findings"]) == 1, "another file, whose first 200 candles are these"
