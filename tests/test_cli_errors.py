"""Every CLI error is one line and exit 2, never a traceback; the audits read a store without changing it.

Each bad argument below once ended in a traceback, looped forever (`rebuild --page-size 0`), wrote into a
directory it created, or turned a mistyped path into an empty store that verified "OK: 0 events".
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tests.builders import one_of_each
from tests.conftest import ROOT
from tradeledger.adapters.cli import main
from tradeledger.adapters.database import MIGRATIONS, create_db_engine, upgrade
from tradeledger.adapters.eventstore import GENESIS, chain_digest, open_store

DATA = ROOT.parent / "shared" / "data" / "candles" / "XRP_ETH-5m.json"
READ_ONLY_COMMANDS = (["verify"], ["reproduce"], ["replay", "--position", "1"], ["events"], ["health"],
                      ["export", "--out", "{tmp}/export"], ["statement", "--out", "{tmp}/statement.html"])


def cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Run the CLI in this process: its exit code and its stderr lines."""
    code = main(list(argv))
    return code, capsys.readouterr().err.splitlines()


def files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def assert_one_line_error(code: int, err: list[str], *fragments: str) -> None:
    assert code == 2, err
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    for fragment in fragments:
        assert fragment in err[0], err


@pytest.fixture
def history(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade(url)
    store = open_store(url)
    store.save(*one_of_each())
    store.close()
    (tmp_path / "garbage.json").write_text("not json")
    (tmp_path / "shape.json").write_text('{"head_position": "x"}')
    (tmp_path / "checkpoint.json").write_text('{"format": "tradeledger-checkpoint-v1", "store_id": "x", '
                                              '"tree_size": 1, "root_hash": "00", "business_time": "", '
                                              '"recorded_time": "", "key_id": "", "signature": ""}')
    return url


BAD_ARGUMENTS = [
    (["events", "--after", "99999999999999999999999"], "--after: expected an integer from 0 to"),
    (["events", "--after", "-1"], "--after: expected an integer from 0 to"),
    (["events", "--limit", "0"], "--limit: expected an integer from 1 to 10000, got 0"),
    (["events", "--limit", "10001"], "--limit: expected an integer from 1 to 10000"),
    (["events", "--limit", "many"], "--limit: expected an integer from 1 to 10000, got many"),
    (["verify", "--checkpoint", "{tmp}/missing.json"], "--checkpoint: cannot read"),
    (["verify", "--checkpoint", "{tmp}/garbage.json"], "is not a CheckpointFile file"),
    (["verify", "--checkpoint", "{tmp}/shape.json"], "is not a CheckpointFile file"),
    (["verify", "--checkpoint", "{tmp}/checkpoint.json", "--public-key", "{tmp}/missing.pub"],
     "--public-key: cannot read"),
    (["prove", "--position", "0"], "--position: expected an integer from 1"),
    (["keys", "new", "--out", "{tmp}/no/such/dir/key.pem"], "--out: directory"),
    (["seal", "--out", "{tmp}/no/such/dir/seal.json"], "--out: directory"),
    (["export", "--out", "{tmp}/no/such/dir"], "--out: directory"),
    (["statement", "--out", "{tmp}/no/such/dir/s.html"], "--out: directory"),
    (["statement", "--out", "{tmp}/s.html", "--as-of", "yesterday"], "--as-of: expected an ISO-8601 time"),
    (["rebuild", "--page-size", "0"], "--page-size: expected an integer from 1 to 100000, got 0"),
    (["rebuild", "--page-size", "100001"], "--page-size: expected an integer from 1 to 100000"),
    (["project", "--page-size", "-5"], "--page-size: expected an integer from 1 to 100000"),
    (["project", "--every", "0"], "--every: expected a number from"),
    (["project", "--every", "nan"], "--every: expected a number from"),
    (["backtest", "--data", str(DATA), "--batch", "0"], "--batch: expected an integer from 1 to 100000"),
    (["replay", "--position", "-1"], "--position: expected an integer from 0 to"),
    (["replay", "--position", str(2**70)], "--position: expected an integer from 0 to"),
    (["replay", "--as-of", "yesterday"], "--as-of: expected an ISO-8601 time"),
    (["replay", "--recorded-at", "2024-13-01"], "--recorded-at: expected an ISO-8601 time"),
    (["serve", "--port", "70000"], "--port: expected an integer from 0 to 65535"),
    (["run", "--port", "-1"], "--port: expected an integer from 0 to 65535"),
    (["events", "--nope"], "unrecognized arguments: --nope"),
]


@pytest.mark.parametrize(("argv", "fragment"), BAD_ARGUMENTS, ids=[" ".join(a[:2]) for a, _ in BAD_ARGUMENTS])
def test_a_bad_argument_is_one_line_and_exit_2_and_creates_nothing(
        argv: list[str], fragment: str, history: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = files(tmp_path)
    code, err = cli(["--database", history, *(a.format(tmp=tmp_path) for a in argv)], capsys)
    assert_one_line_error(code, err, fragment)
    assert files(tmp_path) == before


def test_the_errors_reach_a_shell_as_one_line_without_a_traceback(history: str, tmp_path: Path) -> None:
    for argv, fragment in BAD_ARGUMENTS[:12:3]:
        result = subprocess.run([sys.executable, "-m", "tradeledger.adapters.cli", "--database", history,
                                 *(a.format(tmp=tmp_path) for a in argv)],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert_one_line_error(result.returncode, result.stderr.splitlines(), fragment)


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=lambda a: a[0])
def test_a_read_only_command_refuses_a_missing_sqlite_store_and_creates_nothing(
        argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo" / "ledgr.sqlite"
    code, err = cli(["--database", f"sqlite:///{typo}", *(a.format(tmp=tmp_path) for a in argv)], capsys)
    assert_one_line_error(code, err, f"tradeledger {argv[0]}: no event store at {typo}")
    assert files(tmp_path) == set()


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=lambda a: a[0])
def test_a_read_only_command_refuses_a_postgres_database_without_a_store_and_creates_nothing(
        argv: list[str], postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(["--database", postgres_url, *(a.format(tmp=tmp_path) for a in argv)], capsys)
    assert_one_line_error(code, err, "holds no event store (no table tradeledger_events)")
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    code, err = cli(["--database", missing, *(a.format(tmp=tmp_path) for a in argv)], capsys)
    assert_one_line_error(code, err, "cannot open the database", 'database "no_such_database" does not exist')
    assert files(tmp_path) == set()


def test_the_audits_open_a_store_read_only_and_never_migrate_it(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.sqlite"
    url = f"sqlite:///{path}"
    upgrade_to(url, "0001")
    store = open_store(url)
    store.save(*one_of_each())
    store.close()
    code, err = cli(["--database", url, "verify"], capsys)
    assert_one_line_error(code, err, "schema is at revision 0001", "run `tradeledger db upgrade`")
    code, _ = cli(["--database", url, "events", "--limit", "3"], capsys)
    assert code == 0, "reading the log still works on a schema behind head"
    assert revision(url) == "0001", "nothing migrated the store"


def test_a_read_only_store_and_engine_refuse_every_write(store_url: str) -> None:
    upgrade(store_url)
    store = open_store(store_url, read_only=True)
    engine = create_db_engine(store_url, read_only=True)
    try:
        with pytest.raises(Exception, match="(?i)read-?only"):
            store.save(*one_of_each())
        with pytest.raises(sa.exc.DBAPIError, match="(?i)read-?only"), engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM alembic_version"))
    finally:
        store.close()
        engine.dispose()


def test_verify_turns_malformed_rows_into_findings_naming_their_position(
        history: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = history.removeprefix("sqlite:///")
    assert cli(["--database", history, "rebuild"], capsys)[0] == 0
    with sqlite3.connect(path) as db:
        head = db.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
        rows = [("not-a-uuid", 1, "tradeledger.domain.account:Account.Opened", bytes(40)),
                ("0" * 32, 1, "tradeledger.domain.account:Account.Opened", None),
                ("1" * 32, 1, "tradeledger.domain.account:Account.Opened", b"short"),
                ("2" * 32, 1, "nowhere:Nothing", chained(UUID("2" * 32), "nowhere:Nothing", b"{}"))]
        db.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows)
        db.execute("UPDATE projection_tracking SET position = ? WHERE name = 'signals'", (head + 1000,))
    code, out = cli_out(["--database", history, "verify"], capsys)
    assert code == 1
    for position, text in ((head + 1, "[malformed] stream not-a-uuid version 1 at position"),
                           (head + 2, "state is NULL"), (head + 3, "state is 5 bytes"),
                           (head + 4, "[decode]")):  # "nowhere:Nothing" names no event class
        assert any(f"position {position}" in line and text in line for line in out), (position, text, out)
    assert any("[tracking]" in line and f"beyond the log's head {head + 4}" in line for line in out), out


def test_an_unexpected_error_is_one_line_unless_debugging(history: str, tmp_path: Path) -> None:
    with sqlite3.connect(history.removeprefix("sqlite:///")) as db:
        db.execute("INSERT INTO stored_events VALUES (?, 1, 'tradeledger.domain.account:Account.Opened', NULL)",
                   ("3" * 32,))  # `events` has no answer for a NULL state: an unexpected TypeError
    command = [sys.executable, "-m", "tradeledger.adapters.cli", "--database", history, "events"]
    environment = {k: v for k, v in os.environ.items() if k != "TRADELEDGER_DEBUG"}
    quiet = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=environment)
    assert_one_line_error(quiet.returncode, quiet.stderr.splitlines(), "tradeledger events: TypeError: ")
    loud = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**environment, "TRADELEDGER_DEBUG": "1"})
    assert loud.returncode == 2 and "Traceback" in loud.stderr
    assert loud.stderr.splitlines()[-1] == quiet.stderr.strip()


def chained(stream: UUID, topic: str, payload: bytes) -> bytes:
    """The state of a first event whose chain holds: only its topic is wrong."""
    return chain_digest(GENESIS, stream, 1, topic, payload) + payload


def cli_out(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def upgrade_to(url: str, target: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_db_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, target)
    engine.dispose()


def revision(url: str) -> str:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return value
