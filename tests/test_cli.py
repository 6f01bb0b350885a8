"""The command line as a user meets it: help everywhere, one message for bad settings, the audit log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.cli_commands import CATALOGUE
from tradeledger.adapters.database import upgrade
from tradeledger.adapters.eventstore import open_store
from tests.builders import one_of_each
from tests.conftest import ROOT


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*name.split(), "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tradeledger {name} ") and " ".join(CATALOGUE[name].help.split()[:3]) in out


def test_a_bad_settings_file_lists_every_bad_key_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[trading]\nfee_rate = "abc"\nsymbols = []\n[api]\nport = 70000\n'
                   '[predictor]\nfast = 30\nslow = 20\n[risk]\nmax_drawdown_percnt = 5\n')
    database = tmp_path / "never.sqlite"
    result = subprocess.run(
        [sys.executable, "-m", "tradeledger.adapters.cli", "--settings", str(bad), "--database", f"sqlite:///{database}",
         "verify"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    for key in ("trading.fee_rate", "trading.symbols", "api.port", "predictor.slow", "risk.max_drawdown_percnt"):
        assert key in result.stderr
    assert not database.exists(), "nothing may start before the settings are valid"


def test_environment_values_reach_the_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.sqlite'}"
    result = subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "db", "upgrade", "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "TRADELEDGER_DATABASE__URL": url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["database"] == url and (tmp_path / "env.sqlite").exists()


def test_events_pages_the_audit_log(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    upgrade(sqlite_url)
    store = open_store(sqlite_url)
    store.save(*one_of_each())
    store.close()
    assert main(["--database", sqlite_url, "events", "--limit", "2", "--after", "3", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["position"] for r in records] == [4, 5]
    assert main(["--database", sqlite_url, "events", "--type", "OrderFilled", "--json"]) == 0
    [filled] = json.loads(capsys.readouterr().out)
    assert filled["type"] == "OrderFilled" and filled["data"]["price"] == "0.05"
    assert main(["--database", sqlite_url, "events", "--type", "Nope"]) == 2
    assert "unknown event type Nope" in capsys.readouterr().err


def test_an_agent_that_cannot_continue_the_history_says_why_and_exits(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    data = ROOT.parent / "shared" / "data" / "candles" / "XRP_ETH-5m.json"
    assert main(["--database", url, "backtest", "--data", str(data), "--predictor", "sma_cross"]) == 0
    capsys.readouterr()
    assert main(["--database", url, "agent", "--predictor", "ensemble"]) == 2
    assert "predictor.name recorded 'sma_cross', now 'ensemble'" in capsys.readouterr().err
