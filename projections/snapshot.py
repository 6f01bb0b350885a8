"""Reading several read-model tables as of one commit.

A projection step commits the rows of every table it touched and its tracking
position together; a reader that queries those tables one statement at a time
can still see two different commits (an account row from before a fill, its
positions from after). Reads that combine tables, or that report the position
they reflect, go through `snapshot`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection whose every read sees the same committed state; rolled back when the block ends.

    PostgreSQL: a REPEATABLE READ transaction (the snapshot is taken at its first query).
    SQLite: pysqlite opens no transaction for a SELECT, so each statement would read the
    newest commit; an explicit BEGIN makes the first read fix the WAL snapshot for the rest.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
        yield conn
