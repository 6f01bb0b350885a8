"""SIGKILL the agent process at random moments, restart it, and get exactly the uninterrupted history."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from adapters.audit import read_log, verify_log
from adapters.database import upgrade
from adapters.eventstore import open_store
from adapters.reproduce import decoded
from domain.account import Account
from domain.market import Market
from tests.conftest import CANDLES, ROOT

DATA = CANDLES / "UNITTEST_BTC-1m.csv"
ROWS = 13681


def backtest(url: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "adapters.cli", "--database", url, "backtest", "--data", str(DATA),
               "--predictor", "ensemble", "--batch", "25"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def trading_history(url: str) -> list[tuple[int, dict]]:
    """Every decision-bearing event (markets and the account), without log positions.

    The account's opening is stamped with the wall clock; everything after it with candle time.
    """
    store = open_store(url)
    try:
        return [(e.originator_version, {k: v for k, v in vars(e).items() if not isinstance(e, Account.Opened)
                                        or k != "timestamp"})
                for e, _ in decoded(read_log(store)) if isinstance(e, Account.Event | Market.Event)]
    finally:
        store.close()


def candles_recorded(url: str) -> int:
    upgrade(url)  # a kill may land before the first process migrated the new file
    store = open_store(url)
    try:
        return sum(1 for n in read_log(store) if n.topic.endswith("CandleClosed"))
    finally:
        store.close()


def test_killed_and_restarted_agent_records_every_tick_exactly_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("TRADELEDGER_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    killed_url = f"sqlite:///{tmp_path / 'killed.sqlite'}"
    clean_url = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    clean = backtest(clean_url)

    progress = []
    for _ in range(4):
        process = backtest(killed_url)
        time.sleep(rng.uniform(1.0, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        progress.append(candles_recorded(killed_url))
    finisher = backtest(killed_url)
    assert finisher.wait(timeout=300) == 0, finisher.stderr.read().decode() if finisher.stderr else ""
    assert clean.wait(timeout=300) == 0

    assert any(0 < p < ROWS for p in progress), f"no kill landed mid-run (seed {seed}, progress {progress})"
    killed, uninterrupted = trading_history(killed_url), trading_history(clean_url)
    assert len(killed) == len(uninterrupted), f"seed {seed}"
    assert killed == uninterrupted, f"seed {seed}: the resumed history differs from the uninterrupted one"
    store = open_store(killed_url)
    try:
        report = verify_log(store)
        assert report.ok, report.findings[:3]
    finally:
        store.close()
    assert candles_recorded(killed_url) == ROWS
