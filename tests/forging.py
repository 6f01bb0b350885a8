"""A real backtest store, copied per test, and a forger who rewrites an event and re-chains its stream (the chain's
layout is in docs/log-format.md), so what catches the edit is a check of the event's own facts, not the chain."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.eventstore import GENESIS, chain_digest, split_state
from tests.conftest import CANDLES

ETH = CANDLES / "ETH_BTC-5m.csv"


def backtested(directory: Path) -> Path:
    """The whole ETH/BTC 5m file backtested with sma_cross through the CLI (the drawdown limit is reached)."""
    path = directory / "backtest.sqlite"
    code = main(["--database", f"sqlite:///{path}", "backtest", "--data", str(ETH), "--predictor", "sma_cross"])
    assert code == 0
    return path


def copy_of(store: Path, directory: Path) -> Path:
    copy = directory / "copy.sqlite"
    with sqlite3.connect(store) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return copy


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def rows(path: Path, topic_suffix: str) -> list[tuple[int, dict]]:
    """(log position, payload) of every stored event whose topic ends with `topic_suffix`."""
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT rowid, state FROM stored_events WHERE topic LIKE ? ORDER BY rowid",
                           (f"%{topic_suffix}",)).fetchall()
    return [(rowid, json.loads(split_state(state)[1])) for rowid, state in found]


def forge(path: Path, position: int, edit: Callable[[bytes], bytes]) -> None:
    """Rewrite the payload at `position` and recompute the digest of it and of every later event of its stream."""
    with sqlite3.connect(path) as db:
        stream, version = db.execute("SELECT originator_id, originator_version FROM stored_events WHERE rowid=?",
                                     (position,)).fetchone()
        before = db.execute("SELECT state FROM stored_events WHERE originator_id=? AND originator_version=?",
                            (stream, version - 1)).fetchone()
        previous = GENESIS if before is None else split_state(before[0])[0]
        later = db.execute("SELECT rowid, originator_version, topic, state FROM stored_events "
                           "WHERE originator_id=? AND originator_version>=? ORDER BY originator_version",
                           (stream, version)).fetchall()
        for rowid, v, topic, state in later:
            payload = split_state(state)[1]
            if rowid == position:
                edited = edit(payload)
                assert edited != payload, "the edit changed nothing"
                payload = edited
            previous = chain_digest(previous, UUID(stream), v, topic, payload)
            db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (previous + payload, rowid))


def replaced(old: str, new: str) -> Callable[[bytes], bytes]:
    def edit(payload: bytes) -> bytes:
        assert payload.count(old.encode()) == 1, (old, payload)
        return payload.replace(old.encode(), new.encode())

    return edit


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def backtest_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return backtested(tmp_path_factory.mktemp("backtest"))
