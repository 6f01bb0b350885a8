"""The SQL side of the read models: reading rows back, bulk writes, and the tracking table.

Each projection's tracked position lives in `projection_tracking` and is
written in the same transaction as its rows. The update is conditional on the
position the writer started from, so two runners (or a runner and a rebuild)
can never both apply the same batch: the second one gets TrackingConflict,
rolls back and reloads.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from projections.fold import Projection
from projections.rows import PendingChanges, RowSource, RowTable, metadata

TRACKING = sa.Table(
    "projection_tracking", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("error_position", sa.BigInteger, nullable=True),
)


class Tracking(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    position: int
    error: str | None = None
    error_position: int | None = None


class TrackingConflict(Exception):
    """Another writer moved a projection's position since this one read it."""


def row_source(conn: sa.Connection) -> RowSource[Any]:
    def rows(table: RowTable[Any]) -> list[Any]:
        return table.from_rows(conn.execute(sa.select(table.table).order_by(*table.table.primary_key.columns)))

    return rows


@lru_cache(maxsize=None)
def _upsert(dialect: str, table: sa.Table) -> sa.Insert:
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect](table)
    keys = [c.name for c in table.primary_key.columns]
    updates = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
    return insert.on_conflict_do_update(index_elements=keys, set_=updates)


@lru_cache(maxsize=None)
def _delete(table: sa.Table) -> sa.Delete:
    return table.delete().where(*(c == sa.bindparam(c.name) for c in table.primary_key.columns))


@lru_cache(maxsize=None)
def _trim(table: sa.Table, keep_last: int) -> sa.Delete:
    # Everything older than the keep_last-th newest row; no-op while the table is smaller.
    (key,) = table.primary_key.columns
    newest = sa.select(key).order_by(key.desc()).limit(1).offset(keep_last - 1).scalar_subquery()
    return table.delete().where(key < newest)


def flush(conn: sa.Connection, changes: PendingChanges) -> None:
    """Write one batch of changes: one bulk statement per table and kind."""
    for table, puts, deletes in changes.drain():
        if deletes:
            conn.execute(_delete(table.table), table.key_params(deletes))
        if puts:
            conn.execute(_upsert(conn.dialect.name, table.table), table.to_params(puts))
            if table.keep_last is not None:
                conn.execute(_trim(table.table, table.keep_last))


def read_tracking(conn: sa.Connection, projections: Iterable[Projection]) -> dict[str, Tracking]:
    """Every named projection's tracking row; a projection never run is at position 0."""
    names = [p.name for p in projections]
    found = {r.name: r for r in msgspec.convert(
        list(conn.execute(sa.select(TRACKING).where(TRACKING.c.name.in_(names)))), list[Tracking],
        from_attributes=True,
    )}
    return {name: found.get(name, Tracking(name=name, position=0)) for name in names}


def ensure_tracking(conn: sa.Connection, projections: Iterable[Projection]) -> None:
    rows = [{"name": p.name, "position": 0} for p in projections]
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[conn.dialect.name](TRACKING)
    conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]), rows)


def advance(conn: sa.Connection, name: str, *, expected: int, to: Tracking) -> None:
    """Move a projection's tracking row from `expected` to `to`; TrackingConflict if it moved meanwhile."""
    result = conn.execute(
        TRACKING.update().where(TRACKING.c.name == name, TRACKING.c.position == expected)
        .values(position=to.position, error=to.error, error_position=to.error_position)
    )
    if result.rowcount != 1:
        raise TrackingConflict(f"projection {name} is no longer at position {expected}")


def reset(conn: sa.Connection, projections: Iterable[Projection]) -> None:
    """Drop every row of the projections and put them back at position 0."""
    projections = list(projections)
    for projection in projections:
        for table in projection.tables:
            conn.execute(table.table.delete())
    ensure_tracking(conn, projections)
    conn.execute(TRACKING.update().where(TRACKING.c.name.in_([p.name for p in projections]))
                 .values(position=0, error=None, error_position=None))
