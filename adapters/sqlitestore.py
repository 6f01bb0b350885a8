"""eventsourcing's SQLite persistence as the event store runs it: batch inserts and the commit durability.

Named by topic in `eventstore.store_environment`: `SQLITE_SYNCHRONOUS` sets SQLite's `synchronous` on
every connection of the event store. The library leaves SQLite's default, FULL: in WAL mode each commit
waits for an fsync of the log. NORMAL syncs the log only at checkpoints: a killed process loses nothing
committed, a power loss or an OS crash may lose the last commits (never the file's consistency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Environment
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection, SQLiteConnectionPool, SQLiteFactory

Row = tuple[str, int, str, bytes]  # a stored event as the insert's parameters: id hex, version, topic, state
SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


class BatchInsertSQLiteRecorder(SQLiteApplicationRecorder):
    """Inserts an append's rows with one `executemany` instead of one `execute` per row.

    The library inserts row by row to read each rowid back. Inside the append's
    transaction this connection holds SQLite's only write lock, and a table
    without AUTOINCREMENT gives each new row max(rowid) + 1, so the rowids of
    the batch are the consecutive numbers ending at `last_insert_rowid()`.
    """

    def insert_rows(self, rows: Sequence[Row]) -> Sequence[int]:
        """Insert rows already in the statement's parameter form, in one transaction; returns their rowids."""
        with self.datastore.transaction(commit=True) as c:
            c.executemany(self.insert_events_statement, rows)
            c.execute("SELECT last_insert_rowid()")  # executemany leaves the cursor's lastrowid unset
            last = c.fetchone()[0]
        return range(last - len(rows) + 1, last + 1)


class SynchronousPool(SQLiteConnectionPool):
    """The library's pool, setting `synchronous` on each connection it opens (the setting is per connection)."""

    def __init__(self, synchronous: str, **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous={self.synchronous}")  # one of SYNCHRONOUS, checked
        return connection


class LedgerSQLiteFactory(SQLiteFactory):
    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        synchronous = (self.env.get(self.SQLITE_SYNCHRONOUS) or "").strip().upper()
        if not synchronous:
            return
        if synchronous not in SYNCHRONOUS:
            raise OSError(f"{self.SQLITE_SYNCHRONOUS}: expected one of {', '.join(sorted(SYNCHRONOUS))}, "
                          f"got {synchronous!r}")
        # The library's datastore builds its own pool; it opens no connection before the recorder's first use.
        pool = self.datastore.pool
        self.datastore.pool = SynchronousPool(
            synchronous, db_name=pool.db_name, lock_timeout=pool.lock_timeout, pool_size=pool.pool_size,
            max_overflow=pool.max_overflow, pool_timeout=pool.pool_timeout, max_age=pool.max_age,
            pre_ping=pool.pre_ping)
        pool.close()
