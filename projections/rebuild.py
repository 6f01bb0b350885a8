"""Rebuilding read models into shadow tables, swapped in only when the whole log folded.

A rebuild never touches the live tables until it has succeeded:
1. drop what a killed rebuild may have left, then create `<table>__rebuild`
   for each of the projections' tables, and `projection_tracking__rebuild`,
   from the same `sa.Table` metadata as the live ones;
2. fold the log into them with an ordinary runner (`place=shadow`): pages of
   `page_size` events, each committed, so a large log needs no huge
   transaction and holds SQLite's write lock no longer than a live step;
3. when every projection reached the head without an error, swap in one
   transaction: drop each live table, rename its shadow to its name, copy the
   shadow tracking rows over the live ones, drop the shadow tracking table.
   PostgreSQL and SQLite both run DDL inside a transaction, so readers see
   the old tables or the new ones, never a mix.
A failure (a projection stopping on an event, an error, a kill) before the
swap drops the shadows (or leaves them to the next rebuild) and changes
nothing live. A live runner meanwhile keeps the old tables current; after
the swap its next step finds the tracking moved (TrackingConflict) and
reloads from the new rows, or, at the same position, continues from rows
equal to the ones it had (folds are deterministic).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache

import sqlalchemy as sa

from tradeledger.projections import sql
from tradeledger.projections.fold import Projection
from tradeledger.projections.runner import PAGE_SIZE, EventFeed, ProjectionRunner, describe

logger = logging.getLogger(__name__)
SUFFIX = "__rebuild"
SHADOWS = sa.MetaData()


class RebuildFailed(Exception):
    """The rebuild stopped before its swap: the live read models are as they were."""


@lru_cache(maxsize=None)
def shadow(table: sa.Table) -> sa.Table:
    """The rebuild's copy of a table (a `sql.Place`)."""
    if table.indexes:
        raise NotImplementedError(f"{table.name}: the swap renames primary keys only, not secondary indexes")
    copy = table.to_metadata(SHADOWS, name=table.name + SUFFIX)
    copy.primary_key.name = pkey(copy)  # named, so the swap can give it the live table's name
    return copy


def pkey(table: sa.Table) -> str:
    return f"{table.name}_pkey"  # PostgreSQL's own name for an unnamed primary key


def tables(projections: Sequence[Projection]) -> list[sa.Table]:
    """The tables a rebuild of these projections makes shadows of: theirs and the tracking table."""
    return [*(t.table for p in projections for t in p.tables), sql.TRACKING]


def rebuild(feed: EventFeed, engine: sa.Engine, projections: Sequence[Projection], *,
            page_size: int = PAGE_SIZE) -> int:
    """Fold the log into shadow tables and swap them in; the number of events read. RebuildFailed if not."""
    with engine.begin() as conn:
        for table in tables(projections):
            shadow(table).drop(conn, checkfirst=True)
            shadow(table).create(conn)
    try:
        events = ProjectionRunner(feed, engine, projections, page_size=page_size, place=shadow,
                                  on_stop=lambda _name, _failed: None).catch_up()  # RebuildFailed says it
        with engine.begin() as conn:
            failed = [t for t in sql.read_tracking(conn, projections, shadow).values() if t.error is not None]
        if failed:
            raise RebuildFailed("; ".join(f"projection {t.name} stopped on the event at position "
                                          f"{t.error_position}: {t.error}" for t in failed))
        with engine.begin() as conn:
            swap(conn, projections)
    except Exception as error:
        drop_shadows(engine, projections)
        if isinstance(error, RebuildFailed):
            raise
        raise RebuildFailed(describe(error)) from error
    return events


def swap(conn: sa.Connection, projections: Sequence[Projection]) -> None:
    sql.begin_writing(conn)  # on SQLite the DDL must run inside the transaction
    built = sql.read_tracking(conn, projections, shadow)
    for table in (t.table for p in projections for t in p.tables):
        conn.execute(sa.text(f'DROP TABLE "{table.name}"'))
        conn.execute(sa.text(f'ALTER TABLE "{shadow(table).name}" RENAME TO "{table.name}"'))
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f'ALTER TABLE "{table.name}" RENAME CONSTRAINT "{pkey(shadow(table))}" '
                                 f'TO "{pkey(table)}"'))
    sql.ensure_tracking(conn, projections)
    for tracking in built.values():
        conn.execute(sql.TRACKING.update().where(sql.TRACKING.c.name == tracking.name).values(
            position=tracking.position, error=None, error_position=None, error_at=None))
    shadow(sql.TRACKING).drop(conn)


def drop_shadows(engine: sa.Engine, projections: Sequence[Projection]) -> None:
    try:
        with engine.begin() as conn:
            for table in tables(projections):
                shadow(table).drop(conn, checkfirst=True)
    except sa.exc.SQLAlchemyError:  # the next rebuild drops them first; the failure that got us here matters more
        logger.warning("could not drop the rebuild's shadow tables", exc_info=True)
