"""kill -9 a real `tradeledger project` at random points while it catches up; each event still applies once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import sqlalchemy as sa

from tradeledger.adapters.database import create_db_engine
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.projections import sql
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.verify import verify_projections
from tests.conftest import ROOT

KILLS = 4


def tracked(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [t.position for t in sql.read_tracking(conn, PROJECTIONS).values()]


def projector(url: str) -> subprocess.Popen[bytes]:
    # Small pages: many commits, so a kill lands between and inside transactions.
    return subprocess.Popen([sys.executable, "-m", "tradeledger.adapters.cli", "--database", url, "project", "--page-size",
                             "300", "--every", "0.2"], cwd=ROOT, stdout=subprocess.DEVNULL)


def run_until(process: subprocess.Popen[bytes], engine: sa.Engine, reached: Callable[[list[int]], bool]) -> None:
    deadline = time.monotonic() + 120  # only stops a broken test from hanging
    while process.poll() is None and not reached(tracked(engine)) and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_killed_projector_resumes_exactly_once(history_store: Callable[[int], LedgerStore],
                                                 store_url: str) -> None:
    store = history_store(7000)
    head = store.head_position()
    assert head > 30_000
    engine = create_db_engine(store_url)
    seed = int.from_bytes(os.urandom(4), "big")
    targets = sorted(random.Random(seed).sample(range(head // 20, head * 9 // 10), KILLS))
    killed_mid_run = 0
    for target in targets:
        process = projector(store_url)
        run_until(process, engine, lambda positions, target=target: min(positions, default=0) >= target)
        process.kill()  # SIGKILL: no cleanup of any kind
        process.wait()
        killed_mid_run += 0 < min(tracked(engine)) < head

    process = projector(store_url)
    run_until(process, engine, lambda positions: positions == [head] * len(PROJECTIONS))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, "a clean stop on SIGTERM"
    assert killed_mid_run >= 1, f"no kill landed while catching up (seed {seed}, targets {targets})"

    checks = verify_projections(engine, EventLog(store, engine))
    engine.dispose()
    assert [(c.name, c.position, c.compared) for c in checks] == [(p.name, head, True) for p in PROJECTIONS]
    assert [c for c in checks if not c.ok] == [], f"seed {seed}, targets {targets}"
