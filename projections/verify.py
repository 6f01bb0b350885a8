"""Check the read models in the database against a fresh fold of the log, and reconcile the money.

Each projection is compared at the position it has committed: the log is
folded up to exactly that position, so a projection that lags is still
checked (and its lag reported). Rows and tracking are committed together, so
if the tracked position is the same before and after reading the rows, the
rows are the ones for that position; if a live runner moved it meanwhile,
the projection is reported as not compared rather than as wrong.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.projections import sql
from tradeledger.projections.fold import FoldFailed, Projection, apply_all
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_view import reconcile
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.replay import ReadModels, pages
from tradeledger.projections.rows import RowMismatch, RowSource, RowTable
from tradeledger.projections.runner import EventFeed


class ProjectionCheck(msgspec.Struct, kw_only=True):
    name: str
    position: int
    lag: int
    compared: bool
    error: str | None = None  # the runner stopped this projection on an event
    error_position: int | None = None
    fold_error: str | None = None  # a fresh fold of the log cannot get to the tracked position either
    mismatch: RowMismatch | None = None
    unreconciled: RowMismatch | None = None

    @property
    def ok(self) -> bool:
        return all(v is None for v in (self.error, self.fold_error, self.mismatch, self.unreconciled))


def first_mismatch(expected: RowSource[Any], actual: RowSource[Any],
                   tables: Sequence[RowTable[Any]]) -> RowMismatch | None:
    """The first row, table by table in key order, that differs between two sets of read models."""
    for table in tables:
        want = {table.key_of(r): r for r in expected(table)}
        have = {table.key_of(r): r for r in actual(table)}
        for key in sorted(want.keys() | have.keys()):
            if want.get(key) != have.get(key):
                return RowMismatch(table=table.name, key=_show_key(key),
                                   message=_difference(want.get(key), have.get(key)))
    return None


def _difference(want: msgspec.Struct | None, have: msgspec.Struct | None) -> str:
    if have is None:
        return "missing from the database (a fresh fold has it)"
    if want is None:
        return "in the database, but a fresh fold does not produce it"
    fields = [f for f in want.__struct_fields__ if getattr(want, f) != getattr(have, f)]
    return "; ".join(f"{f} is {_show(getattr(have, f))}, a fresh fold gives {_show(getattr(want, f))}"
                     for f in fields)


def _show(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value) if isinstance(value, Decimal | UUID) else repr(value)


def _show_key(key: object) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return ", ".join(part if isinstance(part, str) else _show(part) for part in parts)


def verify_projections(engine: sa.Engine, feed: EventFeed,
                       projections: Sequence[Projection] = PROJECTIONS) -> list[ProjectionCheck]:
    with engine.connect() as conn:
        before = sql.read_tracking(conn, projections)
    models = ReadModels(projections)
    limits = {p.name: before[p.name].position for p in projections}
    failed: dict[str, FoldFailed] = {}
    for page in pages(feed, until=max(limits.values(), default=0)):
        for projection, fold in zip(projections, models.folds, strict=True):
            if projection.name not in failed:
                try:
                    apply_all(fold, page[:bisect_right(page, limits[projection.name], key=attrgetter("position"))])
                except FoldFailed as error:
                    failed[projection.name] = error
    head = feed.head()
    with engine.connect() as conn:
        stored = _snapshot(sql.row_source(conn), projections)
        after = sql.read_tracking(conn, projections)
    return [_check(p, before[p.name], after[p.name], head, models, stored, failed.get(p.name))
            for p in projections]


def _snapshot(rows: RowSource[Any], projections: Sequence[Projection]) -> RowSource[Any]:
    tables = {t.name: rows(t) for p in projections for t in p.tables}
    return lambda table: tables[table.name]


def _check(projection: Projection, before: sql.Tracking, after: sql.Tracking, head: int, models: ReadModels,
           stored: RowSource[Any], failed: FoldFailed | None) -> ProjectionCheck:
    check = ProjectionCheck(name=projection.name, position=before.position, lag=max(0, head - before.position),
                            compared=before == after and failed is None, error=before.error,
                            error_position=before.error_position, fold_error=None if failed is None else str(failed))
    if check.compared:
        check.mismatch = first_mismatch(models.tables.rows, stored, projection.tables)
        if projection is PORTFOLIO:
            check.unreconciled = reconcile(stored)
    return check
