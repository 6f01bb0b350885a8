"""One writer per stream (issue 17 item 1): control commands, the agent's lease, and concurrent appends.

Every test here uses real processes or real threads on a real SQLite file and a real PostgreSQL database,
and waits on visible progress (events counted), never on time.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eventsourcing.persistence import IntegrityError

from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.services.audit import verify_log
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.account import Account
from tradeledger.domain.control import ControlCommand
from tradeledger.domain.ids import account_id
from tradeledger.domain.market import Market
from tests.conftest import CANDLES, ROOT

DEADLINE = 120.0  # seconds any awaited progress may take before the test is declared hung
TOKEN = "hammer-token"
ETH = CANDLES / "ETH_BTC-5m.csv"


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "TRADELEDGER_PREDICTOR__NAME": "sma_cross", "TRADELEDGER_TRADING__SPEED": "15000",
            "TRADELEDGER_AGENT__HEARTBEAT_INTERVAL": "0.5", "TRADELEDGER_API__TOKEN": TOKEN,
            "TRADELEDGER_PROJECTIONS__POLL_INTERVAL": "0.05", **extra}


def tradeledger(url: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tradeledger.adapters.cli", "--database", url, *args], cwd=ROOT,
                            env=environment(), text=True, **popen)


def finished(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--database", url, *args], cwd=ROOT,
                          env=environment(), text=True, capture_output=True, timeout=DEADLINE)


@contextmanager
def event_log(url: str) -> Iterator[EventLog]:
    store, engine = open_store(url), create_db_engine(url)
    try:
        yield EventLog(store, engine)
    finally:
        store.close()
        engine.dispose()


def count(log: EventLog, *types: type) -> int:
    return sum(1 for _ in scan(log, types=types))


def wait_for(what: str, ready: Any, process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + DEADLINE
    while not ready():
        assert process is None or process.poll() is None, f"exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.01)  # between counts: the condition is the visible progress


# -- concurrent writers ---------------------------------------------------------------


def test_two_stores_appending_one_stream_at_once_never_land_out_of_order(store_url: str) -> None:
    """The corruption of issue 17: two writers of one stream; one must fail with a conflict, the chain holds."""
    upgrade(store_url)
    writers = [open_store(store_url) for _ in range(2)]
    first = Account.open("paper", "BTC", Decimal(1), at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    writers[0].save(first)
    conflicts = 0
    for round_ in range(30):
        accounts = [w.repository.get(account_id("paper")) for w in writers]
        for n, account in enumerate(accounts):
            (account.resume_trading if account.is_halted else account.halt_trading)(
                **({} if account.is_halted else {"rule": "manual", "metrics": {}}),
                reason=f"{round_}/{n}", by="test", at=account.modified_on)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def append(store: Any, account: Account) -> None:
            barrier.wait()
            try:
                store.save(account)
                outcomes.append("saved")
            except IntegrityError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=append, args=pair) for pair in zip(writers, accounts, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict", "saved"], f"round {round_}: {outcomes}"
        conflicts += 1
    for writer in writers:
        writer.close()
    with event_log(store_url) as log:
        report = verify_log(log)
        assert report.ok, report.findings[:3]
        versions = [r.version for r in scan(log) if r.stream == account_id("paper")]
        assert versions == list(range(1, conflicts + 2)), "one event per round, each chained to its predecessor"


# -- the lease --------------------------------------------------------------------------


def test_a_second_agent_refuses_with_one_line_and_takes_over_once_the_first_is_killed(store_url: str) -> None:
    upgrade(store_url)
    first = tradeledger(store_url, "agent", stderr=subprocess.PIPE)
    with event_log(store_url) as log:
        wait_for("the first agent's candles", lambda: count(log, Market.CandleClosed) >= 150, first)
        for args in (("agent",), ("backtest", "--data", str(ETH))):
            second = finished(store_url, *args)
            assert second.returncode == 2, second.stderr
            errors = [line for line in second.stderr.splitlines() if line.startswith("tradeledger")]
            assert len(errors) == 1 and "another agent is running on this store" in errors[0], second.stderr
            assert "Traceback" not in second.stderr and "CandleOutOfOrder" not in second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = count(log, Market.CandleClosed)
        successor = tradeledger(store_url, "agent", stderr=subprocess.PIPE)
        wait_for("the successor's candles", lambda: count(log, Market.CandleClosed) >= at_kill + 20, successor)
        successor.send_signal(signal.SIGTERM)
        assert successor.wait(timeout=DEADLINE) == 0, successor.stderr.read() if successor.stderr else ""
    assert finished(store_url, "verify").returncode == 0
    assert finished(store_url, "reproduce").returncode == 0


# -- halt/resume hammered during a live run ------------------------------------------------


def hammer(url: str, *, clients: int, seconds: float) -> None:
    """`clients` threads post halt/resume during a live `run` for `seconds`; every command applied once."""
    upgrade(url)
    run = tradeledger(url, "run", "--port", "0", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert run.stdout is not None
        banner = run.stdout.readline()
        base = re.search(r"dashboard: (\S+)", banner)
        assert base, f"no dashboard line: {banner!r} {run.stderr.read() if run.poll() is not None else ''}"
        with event_log(url) as log:
            wait_for("the account's opening", lambda: count(log, Account.Opened) == 1, run)
            answers = post_for(base[1].rstrip("/"), clients=clients, seconds=seconds)
            statuses = {status for status, _ in answers}
            assert statuses <= {200, 202, 409} and 200 in statuses, statuses
            issued = {r.event.originator_id for r in scan(log, types=[ControlCommand.Issued])}
            assert len(issued) == len(answers), "every request issued exactly one command"
            wait_for("every command handled", lambda: len(handled_ids(log)) >= len(issued), run)
            handled = handled_ids(log)
            assert sorted(handled) == sorted(issued), "every command applied or refused exactly once"
            account = log.get(account_id("paper"))
            if account.is_halted:
                with httpx.Client(base_url=base[1], headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                    assert http.post("/api/control/resume", json={"reason": "end"}, timeout=30).status_code in (200, 202)
            candles = count(log, Market.CandleClosed)
            wait_for("candles after the hammer", lambda: count(log, Market.CandleClosed) >= candles + 20, run)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=DEADLINE) == 0, run.stderr.read() if run.stderr else ""
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    verified = finished(url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    reproduced = finished(url, "reproduce")
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr


def handled_ids(log: EventLog) -> list[Any]:
    return [r.event.command_id for r in scan(log, types=[Account.CommandApplied, Account.CommandRefused])]


def post_for(base: str, *, clients: int, seconds: float) -> list[tuple[int, str]]:
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
            while time.monotonic() < end:
                action = rng.choice(("halt", "resume"))
                response = http.post(f"/api/control/{action}", json={"reason": f"client {n}"})
                with lock:
                    answers.append((response.status_code, response.text))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_eight_clients_hammering_halt_and_resume_during_a_live_run(store_url: str) -> None:
    hammer(store_url, clients=8, seconds=5)


@pytest.mark.slow
@pytest.mark.parametrize("run", range(5))
def test_eight_clients_hammering_halt_and_resume_for_twenty_seconds(store_url: str, run: int) -> None:
    hammer(store_url, clients=8, seconds=20)
