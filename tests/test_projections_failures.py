"""Failures that stay visible, on SQLite and PostgreSQL.

A projection that fails on a real event stops exactly there (the others go
on), says so in its tracking row, in `/api/health`'s report, `tradeledger
health` and the health file, raises an alert, and resumes from that event
once fixed. A rebuild that fails midway, or is killed, changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tradeledger.adapters.services import readmodels
from tradeledger.adapters.cli import main
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.database import MIGRATIONS, create_db_engine
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.projections import sql
from tradeledger.projections.alert_watch import AlertWatcher
from tradeledger.projections.connections import ConnectionsFold
from tradeledger.projections.fold import Fold, EventHandler, Projection
from tradeledger.projections.health_rule import stopped_text
from tradeledger.projections.outbox import Outbox
from tradeledger.projections.rebuild import SUFFIX
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.rows import RowTable, table_for
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.projections.verify import verify_projections
from scripts.synthetic_history import HistoryBuilder
from tradeledger.settings import load_settings
from tests.composing import composed
from tests.apisupport import serving
from tests.conftest import ROOT

POISON = "poison"
CHAT = 111
Snapshot = tuple[dict[str, list[Any]], dict[str, sql.Tracking]]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def container(store_url: str, tmp_path: Path) -> Iterator[Composition]:
    settings = load_settings(overrides={"database.url": store_url,
                                        "projections.health_file": str(tmp_path / "health.json")}, environ={})
    with composed(settings) as built:
        yield built


def tracking(engine: sa.Engine, projections: tuple[Projection, ...] = PROJECTIONS) -> dict[str, sql.Tracking]:
    with engine.connect() as conn:
        return sql.read_tracking(conn, projections)


def snapshot(engine: sa.Engine) -> Snapshot:
    with engine.connect() as conn:
        rows = sql.row_source(conn)
        return {t.name: rows(t) for p in PROJECTIONS for t in p.tables}, sql.read_tracking(conn, PROJECTIONS)


def shadow_tables(engine: sa.Engine) -> list[str]:
    return [name for name in sa.inspect(engine).get_table_names() if name.endswith(SUFFIX)]


def assert_equal_to_a_fresh_fold(container: Composition) -> None:
    checks = verify_projections(container.engine, container.feed)
    assert [(c.name, c.lag, c.ok) for c in checks] == [(p.name, 0, True) for p in PROJECTIONS]


def cli(*args: str, capsys: pytest.CaptureFixture[str], url: str) -> tuple[int, str, str]:
    code = main(["--database", url, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def connect(container: Composition, peer: str) -> int:
    """A gateway with one client from `peer`; the position of the ClientConnected."""
    gateway = Gateway.start(key=f"gateway-{peer}", kind="api", host="h", pid=1, at=utcnow())
    gateway.connect_client(session_id="s1", channel="ws", peer=peer, at=utcnow())
    container.store.save(gateway)
    return container.store.head_position()


def poison_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connections fold of a buggy release: it raises on a client from POISON."""
    connected = ConnectionsFold.connected

    def picky(fold: ConnectionsFold, e: Gateway.ClientConnected, position: int) -> None:
        if e.peer == POISON:
            raise RuntimeError(f"cannot project a client from {e.peer}\n(a second line)")
        connected(fold, e, position)

    monkeypatch.setattr(ConnectionsFold, "connected", picky)


def projection_entry(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in report["projections"] if p["name"] == name)


def test_a_projection_failing_on_an_event_stops_there_visibly_and_resumes_once_fixed(
        container: Composition, store_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store, engine = container.store, container.engine
    store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
    connect(container, "127.0.0.1")
    container.runner().catch_up()
    poison_connections(monkeypatch)
    poisoned = connect(container, POISON)
    container.control.issue("halt", reason="after the poison", by="api", channel="test", at=utcnow())
    container.control.issue("resume", reason="after the poison", by="api", channel="test", at=utcnow())
    head = store.head_position()

    started = utcnow()
    container.runner(on_progress=container.health_file()).catch_up()
    stopped = tracking(engine)["connections"]
    assert (stopped.position, stopped.error_position) == (poisoned - 1, poisoned), "stopped at it, not past it"
    assert stopped.error == "RuntimeError: cannot project a client from poison (a second line)", "one line"
    assert stopped.error_at is not None and started <= stopped.error_at <= utcnow()
    others = {name: t for name, t in tracking(engine).items() if name != "connections"}
    assert others == {name: sql.Tracking(name=name, position=head) for name in others}, "the others went on"

    container.runner().catch_up()  # a restart of the same release fails there again
    assert tracking(engine)["connections"] == stopped, "still there, and since the first failure"

    reason = f"projection connections {stopped_text(stopped.error, poisoned, stopped.error_at)}"
    code, out, _ = cli("health", "--json", capsys=capsys, url=store_url)
    assert code == 2
    with serving(container) as url:
        served = httpx.get(url + "/api/health").json()
    written = json.loads(Path(container.settings.projections.health_file or "").read_bytes())
    for report in (json.loads(out), served, written):
        assert report["status"] == "unhealthy" and reason in report["reasons"]
        entry = projection_entry(report, "connections")
        assert entry == {"name": "connections", "position": poisoned - 1, "lag": report["head"] - poisoned + 1,
                         "error": stopped.error, "error_position": poisoned,
                         "error_at": msgspec.json.encode(stopped.error_at).decode().strip('"')}

    outbox = Outbox(engine, [CHAT])
    outbox.register_chats(head=head, at=utcnow())
    watcher = AlertWatcher(engine, outbox.known, heartbeat_interval=5.0, stuck_after=120.0)
    for _ in range(2):  # a second look (or a second bot) queues nothing more
        outbox.add(watcher.check(now=utcnow(), head=head), at=utcnow())
    assert [(r.alert_id, r.chat_id, r.kind, r.status, r.text) for r in outbox.rows()] == [
        (f"projection_stuck:connections:error:{poisoned}", CHAT, "projection_stuck", "pending",
         f"projection connections {stopped_text(stopped.error, poisoned, stopped.error_at)}")]

    monkeypatch.undo()  # the fixed release
    container.runner().catch_up()
    fixed = tracking(engine)["connections"]
    assert fixed == sql.Tracking(name="connections", position=store.head_position()), "error cleared"
    assert_equal_to_a_fresh_fold(container)  # it resumed at the poisoned event: nothing skipped
    code, out, _ = cli("health", "--json", capsys=capsys, url=store_url)
    report = json.loads(out)
    assert (code, report["reasons"]) == (1, ["agent is none"]), "degraded only because no agent ever ran"


class NumberRow(msgspec.Struct, kw_only=True):
    position: int
    value: int


NUMBERS = RowTable(table_for(NumberRow, "test_numbers", primary_key=["position"], metadata=sa.MetaData()), NumberRow)


class Numbers(Fold):
    """A row per halt or resume; a halt for POISON makes a number that no BIGINT column holds.

    Each command appends three events: its Issued, then the account's TradingHalted/Resumed and CommandApplied.
    """

    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {Account.TradingHalted: self.number, Account.TradingResumed: self.number}

    def number(self, e: Account.TradingHalted | Account.TradingResumed, position: int) -> None:
        self.sink.put(NUMBERS, NumberRow(position=position, value=2 ** 70 if e.reason == POISON else position))


NUMBERS_PROJECTION = Projection("numbers", (NUMBERS,), Numbers)


def test_rows_the_database_refuses_stop_their_projection_at_the_event_that_made_them(
        container: Composition) -> None:
    store, engine = container.store, container.engine
    NUMBERS.table.create(engine)
    store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
    for reason in ("one", "two", POISON, "three", "four"):
        container.control.issue("halt", reason=reason, by="api", channel="test", at=utcnow())
        container.control.issue("resume", reason=reason, by="api", channel="test", at=utcnow())
    projections = (*PROJECTIONS, NUMBERS_PROJECTION)
    ProjectionRunner(container.feed, engine, projections).catch_up()  # the whole log in one batch

    halts = [r.position for r in container.feed.read(0, 1000) if r.type is Account.TradingHalted]
    numbers = tracking(engine, projections)["numbers"]
    assert (numbers.position, numbers.error_position) == (halts[2] - 1, halts[2])
    assert (numbers.error or "").startswith(("OverflowError", "NumericValueOutOfRange")), numbers.error
    with engine.connect() as conn:
        assert [r.position for r in sql.row_source(conn)(NUMBERS)] == [halts[0], halts[0] + 3, halts[1],
                                                                       halts[1] + 3], "the rows before it are kept"
    head = store.head_position()
    assert {n: t.position for n, t in tracking(engine).items()} == {p.name: head for p in PROJECTIONS}


def test_a_rebuild_failing_midway_changes_nothing_and_says_why_on_one_line(
        history_store: Callable[[int], LedgerStore], container: Composition, store_url: str) -> None:
    history_store(300)
    container.runner().catch_up()
    before = snapshot(container.engine)
    beats = [r.position for r in container.feed.read(0, 100_000) if r.type is AgentRun.Heartbeat]
    middle = beats[len(beats) // 2]
    assert middle > 500
    # The real CLI in a process of its own, with a health fold that cannot fold one heartbeat.
    script = f"""
import sys
from tradeledger.adapters.cli import main
from tradeledger.projections.health import HealthFold
heartbeat = HealthFold.heartbeat
def failing(fold, e, position):
    if position == {middle}:
        raise RuntimeError("cannot fold this heartbeat")
    heartbeat(fold, e, position)
HealthFold.heartbeat = failing
sys.exit(main(["--database", {store_url!r}, "rebuild", "--page-size", "100"]))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"tradeledger rebuild: failed, the read models are unchanged: projection health stopped "
                           f"on the event at position {middle}: RuntimeError: cannot fold this heartbeat\n")
    assert snapshot(container.engine) == before, "every row and tracking position as it was"
    assert shadow_tables(container.engine) == []


def shadow_progress(engine: sa.Engine) -> int:
    """The lowest position the rebuild's shadow tracking has reached (0 before it has any)."""
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT min(position) FROM projection_tracking{SUFFIX}")).scalar() or 0
    except sa.exc.SQLAlchemyError:  # not created yet
        return 0


def test_a_killed_rebuild_changes_nothing_and_the_next_one_swaps_in_under_a_live_runner(
        history_store: Callable[[int], LedgerStore], container: Composition, store_url: str) -> None:
    store = history_store(1500)
    live = container.runner()
    live.catch_up()
    before = snapshot(container.engine)
    rebuild = subprocess.Popen([sys.executable, "-m", "tradeledger.adapters.cli", "--database", store_url, "rebuild",
                                "--page-size", "200"], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # only stops a broken test from hanging
    while rebuild.poll() is None and shadow_progress(container.engine) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    rebuild.kill()  # SIGKILL, after its first pages are committed to the shadow tables
    assert rebuild.wait() < 0, "killed before it finished"
    assert shadow_progress(container.engine) > 0, "it had rebuilt part of the log"
    assert snapshot(container.engine) == before

    result = readmodels.rebuild(container.feed, container.engine)
    assert result.events == store.head_position()
    assert snapshot(container.engine) == before, "the same rows, folded afresh"
    assert shadow_tables(container.engine) == [], "the killed rebuild's leftovers are gone too"
    HistoryBuilder(store, symbols=("XRP/BTC",), account="later", seed=4).extend(20)
    live.catch_up()  # its folds were restored from the tables that were swapped out
    assert_equal_to_a_fresh_fold(container)


def migrate(url: str, action: Callable[[Config, str], None], revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            action(config, revision)
    finally:
        engine.dispose()


def test_migration_0004_adds_the_failure_time_to_existing_tracking_rows_and_can_run_again(store_url: str) -> None:
    migrate(store_url, command.upgrade, "0003")
    engine = create_db_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projection_tracking (name, position, error, error_position) "
                             "VALUES ('portfolio', 7, 'ValueError: old', 8)"))
    migrate(store_url, command.upgrade, "head")
    migrate(store_url, command.stamp, "0003")  # as if a second starter had not seen the first one's upgrade
    migrate(store_url, command.upgrade, "head")
    assert tracking(engine)["portfolio"] == sql.Tracking(name="portfolio", position=7, error="ValueError: old",
                                                         error_position=8)
    migrate(store_url, command.downgrade, "0003")
    assert "error_at" not in {c["name"] for c in sa.inspect(engine).get_columns("projection_tracking")}
    engine.dispose()
