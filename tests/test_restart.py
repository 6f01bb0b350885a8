"""SIGKILL the agent process at random points of its run, restart it, and get exactly the uninterrupted history.

Each kill waits for a random number of stored candles (counted in the store), never for a time: on a busy
machine a timed kill can land before the first candle, every time.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tradeledger.adapters.services.audit import verify_log
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.account import Account
from tradeledger.domain.market import Market
from tests.conftest import CANDLES, ROOT

DATA = CANDLES / "UNITTEST_BTC-1m.csv"
ROWS = 13681
KILLS = 4
DEADLINE = 300  # seconds a backtest may take to reach a kill point or its end before the test is declared hung
POLL_SECONDS = 0.01  # between counts; the wait returns early when the backtest exits
CANDLES_STORED = sa.text("SELECT count(*) FROM stored_events WHERE topic = :topic").bindparams(
    topic=f"{Market.CandleClosed.__module__}:{Market.CandleClosed.__qualname__}")


def backtest(url: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tradeledger.adapters.cli", "--database", url, "backtest", "--data", str(DATA),
               "--predictor", "ensemble", "--batch", "25"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def trading_history(url: str) -> list[tuple[int, dict]]:
    """Every decision-bearing event (markets and the account), without log positions.

    The account's opening is stamped with the wall clock; everything after it with candle time.
    """
    store, engine = open_store(url), create_db_engine(url)
    try:
        events = [r.event for r in scan(EventLog(store, engine))]
        return [(e.originator_version, {k: v for k, v in vars(e).items() if not isinstance(e, Account.Opened)
                                        or k != "timestamp"})
                for e in events if isinstance(e, Account.Event | Market.Event)]
    finally:
        store.close()
        engine.dispose()


def candles_stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(CANDLES_STORED).scalar_one()


def kill_after(process: subprocess.Popen[bytes], engine: sa.Engine, candles: int) -> int:
    """SIGKILL the backtest once the store holds at least `candles` candles; returns how many it holds then."""
    deadline = time.monotonic() + DEADLINE
    while candles_stored(engine) < candles:
        try:
            process.wait(POLL_SECONDS)
        except subprocess.TimeoutExpired:
            assert time.monotonic() < deadline, f"the backtest never stored {candles} candles"
        else:
            raise AssertionError(f"the backtest exited ({process.returncode}) before {candles} candles: "
                                 f"{process.stderr.read().decode() if process.stderr else ''}")
    process.send_signal(signal.SIGKILL)
    process.wait()
    return candles_stored(engine)


def test_killed_and_restarted_agent_records_every_tick_exactly_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("TRADELEDGER_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    killed_url = f"sqlite:///{tmp_path / 'killed.sqlite'}"
    clean_url = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    upgrade(killed_url)  # the test counts candles in it from the start
    engine = create_db_engine(killed_url)
    clean = backtest(clean_url)

    targets = sorted(rng.sample(range(1, ROWS * 9 // 10), KILLS))
    progress = [kill_after(backtest(killed_url), engine, target) for target in targets]
    finisher = backtest(killed_url)
    assert finisher.wait(timeout=DEADLINE) == 0, finisher.stderr.read().decode() if finisher.stderr else ""
    assert clean.wait(timeout=DEADLINE) == 0

    assert all(0 < p < ROWS for p in progress), f"a kill landed outside the run (seed {seed}, progress {progress})"
    killed, uninterrupted = trading_history(killed_url), trading_history(clean_url)
    assert len(killed) == len(uninterrupted), f"seed {seed}"
    assert killed == uninterrupted, f"seed {seed}: the resumed history differs from the uninterrupted one"
    store = open_store(killed_url)
    try:
        report = verify_log(EventLog(store, engine))
        assert report.ok, report.findings[:3]
    finally:
        store.close()
    assert candles_stored(engine) == ROWS
    engine.dispose()
