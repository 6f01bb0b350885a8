"""Processes migrating a fresh database at the same moment all succeed: one migrates, the others wait for its lock.

Kept apart from the scale-out test so each spawned migrator imports only what migrating needs.
"""

from __future__ import annotations

import multiprocessing
import traceback
from multiprocessing.synchronize import Barrier
from queue import Queue

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from tradeledger.adapters import database
from tradeledger.adapters.database import MIGRATIONS, create_db_engine, upgrade

MIGRATORS = 6
DEADLINE = 120  # seconds before a migrator is declared hung


def migrate_at_the_same_moment(url: str, start: Barrier, outcomes: Queue[str]) -> None:
    start.wait(DEADLINE)  # every process has imported everything; they call upgrade together
    try:
        upgrade(url)
        outcomes.put("ok")
    except Exception as error:  # noqa: BLE001 - the parent reports what each process hit
        outcomes.put(traceback.format_exception_only(error)[-1].splitlines()[0])


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_processes_migrating_a_fresh_database_at_the_same_moment_all_succeed(store_url: str) -> None:
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as separate commands would be
    start, outcomes = context.Barrier(MIGRATORS), context.Queue()
    migrators = [context.Process(target=migrate_at_the_same_moment, args=(store_url, start, outcomes))
                 for _ in range(MIGRATORS)]
    for process in migrators:
        process.start()
    results = [outcomes.get(timeout=DEADLINE) for _ in migrators]
    for process in migrators:
        process.join(DEADLINE)

    failures = [r for r in results if r != "ok"]
    assert failures == [], f"{len(failures)} of {MIGRATORS} migrators failed: {sorted(set(failures))}"
    engine = create_db_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
                head_revision()]
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "projection_tracking"} <= tables


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    # `check_store` reads it without alembic (start-up time); a branch or an odd header would break that.
    assert database.head_revision() == head_revision()
