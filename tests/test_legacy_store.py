"""A store written by release 0.1.0 opens, verifies and reproduces under the namespaced package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "store-0.1.0.sqlite"
ROOT = Path(__file__).resolve().parent.parent


def tradeledger(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--database", url, *args],
                          cwd=ROOT, text=True, capture_output=True, timeout=300)


def test_a_store_written_by_release_0_1_0_upgrades_verifies_reproduces_and_lists_its_events(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, path)
    url = f"sqlite:///{path}"
    assert tradeledger(url, "db", "upgrade").returncode == 0
    verified = tradeledger(url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    reproduced = tradeledger(url, "reproduce")
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert "300 candles" in reproduced.stdout
    fills = tradeledger(url, "events", "--type", "OrderFilled", "--limit", "1000", "--json")
    assert fills.returncode == 0, fills.stderr
    assert len(json.loads(fills.stdout)) == 15  # 7 round trips and the open position's entry
    halts = json.loads(tradeledger(url, "events", "--type", "TradingHalted", "--json").stdout)
    assert [(h["data"]["by"], h["data"]["reason"]) for h in halts][-1] == ("api", "fixture halt")
    assert halts[0]["data"]["rule"] == "max_daily_loss_percent"  # a risk halt, reproduced by today's rules
