"""The SQL side of the read models: reading rows back, bulk writes, and the tracking table.

Each projection's tracked position lives in `projection_tracking` and is
written in the same transaction as its rows. The update is conditional on the
position the writer started from, so two runners (or a runner and a rebuild)
can never both apply the same batch: the second one gets TrackingConflict,
rolls back and reloads.

Every function takes a `Place`: where the tables live. The live read models
are `live`; a rebuild writes to shadow copies of them (projections.rebuild).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from importlib import import_module
from operator import itemgetter
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from tradeledger.projections.fold import Projection
from tradeledger.projections.rows import PendingChanges, RowSource, RowTable, table_for

# Errors that say the rows cannot be stored: the database refused them (a NUL in text on PostgreSQL, a
# number out of a column's range) or a value cannot be bound at all. A property of the events, as
# deterministic as a fold raising; any other database error (a lock, a lost connection, a missing
# table) is the step's problem and is retried.
REFUSED = (sa.exc.DataError, sa.exc.IntegrityError)
UNBINDABLE = (sa.exc.StatementError, msgspec.MsgspecError, ValueError, TypeError, OverflowError)

Place = Callable[[sa.Table], sa.Table]  # the table a read-model table is written to


def live(table: sa.Table) -> sa.Table:
    return table


class Tracking(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    position: int
    error: str | None = None  # "<exception type>: <message>", on one line
    error_position: int | None = None
    error_at: datetime | None = None  # when it first failed there


TRACKING = table_for(Tracking, "projection_tracking", primary_key=["name"])


class TrackingConflict(Exception):
    """Another writer moved a projection's position since this one read it."""


def row_source(conn: sa.Connection, place: Place = live) -> RowSource[Any]:
    def rows(table: RowTable[Any]) -> list[Any]:
        placed = place(table.table)
        return table.from_rows(conn.execute(sa.select(placed).order_by(*placed.primary_key.columns)))

    return rows


class BulkUpsert:
    """An upsert handed straight to the DB-API's executemany.

    SQLAlchemy compiles the statement and supplies each column's bind
    processor, once; per row only msgspec (in C), those processors and an
    itemgetter run. Measured on a rebuild, SQLAlchemy's own per-row parameter
    handling cost more than the inserts themselves.
    """

    def __init__(self, dialect: Dialect, table: sa.Table) -> None:
        insert = dialect_insert(dialect.name)(table)
        keys = [c.name for c in table.primary_key.columns]
        updates = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
        compiled = insert.on_conflict_do_update(index_elements=keys, set_=updates).compile(dialect=dialect)
        self.sql = compiled.string
        # Decimal -> exact str, UUID -> str, enums -> values, structs -> JSON-able builtins; times stay
        # datetimes for PostgreSQL and become RFC 3339 text on SQLite (see UtcDateTime).
        self.builtin_types = (date,) if dialect.name == "sqlite" else (datetime, date)
        self.processors = [(c.name, p) for c in table.columns
                           if (p := c.type.dialect_impl(dialect).bind_processor(dialect))]
        positions = compiled.positiontup or []
        self.order: Callable[[dict[str, Any]], Any] | None = (
            itemgetter(*positions) if len(positions) > 1 else None
        )

    def execute(self, conn: sa.Connection, rows: list[Any]) -> None:
        params = msgspec.to_builtins(rows, builtin_types=self.builtin_types)
        for row in params:
            for name, process in self.processors:
                row[name] = process(row[name])
        conn.exec_driver_sql(self.sql, [self.order(p) for p in params] if self.order else params)


@lru_cache(maxsize=None)
def _upsert(dialect: Dialect, table: sa.Table) -> BulkUpsert:
    return BulkUpsert(dialect, table)


@lru_cache(maxsize=None)
def _delete(table: sa.Table) -> sa.Delete:
    return table.delete().where(*(c == sa.bindparam(c.name) for c in table.primary_key.columns))


@lru_cache(maxsize=None)
def _trim(table: sa.Table, keep_last: int) -> sa.Delete:
    # Everything older than the keep_last-th newest row; no-op while the table is smaller.
    (key,) = table.primary_key.columns
    newest = sa.select(key).order_by(key.desc()).limit(1).offset(keep_last - 1).scalar_subquery()
    return table.delete().where(key < newest)


def flush(conn: sa.Connection, changes: PendingChanges, place: Place = live) -> None:
    """Write one batch of changes: one bulk statement per table and kind."""
    for table, puts, deletes in changes.drain():
        placed = place(table.table)
        if deletes:
            conn.execute(_delete(placed), table.key_params(deletes))
        if puts:
            _upsert(conn.dialect, placed).execute(conn, puts)
            if table.keep_last is not None:
                conn.execute(_trim(placed, table.keep_last))


def dialect_insert(dialect: str) -> Callable[[sa.Table], Any]:
    """The dialect's own INSERT, which has ON CONFLICT. Imported by name: the PostgreSQL dialect's module
    loads asyncpg's too, 30 ms a SQLite process (`tradeledger health`) would spend for nothing."""
    return import_module(f"sqlalchemy.dialects.{dialect}").insert  # type: ignore[no-any-return]


def read_tracking(conn: sa.Connection, projections: Iterable[Projection], place: Place = live) -> dict[str, Tracking]:
    """Every projection's tracking row; a projection never run is at position 0."""
    return tracking_by_name(conn, [p.name for p in projections], place)


def tracking_by_name(conn: sa.Connection, names: Sequence[str], place: Place = live) -> dict[str, Tracking]:
    """The tracking rows of the projections named; a projection never run is at position 0."""
    tracking = place(TRACKING)
    found = {r.name: r for r in msgspec.convert(
        list(conn.execute(sa.select(tracking).where(tracking.c.name.in_(names)))), list[Tracking],
        from_attributes=True,
    )}
    return {name: found.get(name, Tracking(name=name, position=0)) for name in names}


def ensure_tracking(conn: sa.Connection, projections: Iterable[Projection], place: Place = live) -> None:
    rows = [{"name": p.name, "position": 0} for p in projections]
    insert = dialect_insert(conn.dialect.name)(place(TRACKING))
    conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]), rows)


def advance(conn: sa.Connection, name: str, *, expected: int, to: Tracking, place: Place = live) -> None:
    """Move a projection's tracking row from `expected` to `to`; TrackingConflict if it moved meanwhile."""
    tracking = place(TRACKING)
    result = conn.execute(
        tracking.update().where(tracking.c.name == name, tracking.c.position == expected)
        .values(position=to.position, error=to.error, error_position=to.error_position, error_at=to.error_at)
    )
    if result.rowcount != 1:
        raise TrackingConflict(f"projection {name} is no longer at position {expected}")


def unstorable(error: Exception) -> bool:
    if isinstance(error, sa.exc.DBAPIError):
        return isinstance(error, REFUSED)
    return isinstance(error, UNBINDABLE)  # StatementError without a driver error: binding a parameter failed


def begin_writing(conn: sa.Connection) -> None:
    """Open the transaction now, holding SQLite's write lock.

    pysqlite opens a transaction only at the first INSERT/UPDATE/DELETE: a
    SAVEPOINT or DDL before that would run outside it (a released savepoint
    would commit). BEGIN IMMEDIATE also takes the write lock up front, so a
    step never fails upgrading a read lock that another writer outran.
    """
    driver = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and not driver.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")
