"""Read-model rows: msgspec structs, the tables they live in, and the sinks a fold writes them to.

A fold never talks to a database. It `put`s and `delete`s rows on a sink:
- `MemoryTables` keeps every row: the complete read model in memory (replay,
  verify, property tests);
- `PendingChanges` keeps only what changed since the last flush, last write
  per key winning, so the SQL writer sends one bulk statement per table and
  batch instead of a round trip per event.

Amounts are stored as exact decimal strings (`Decimal` -> `str` -> `Decimal`
round-trips digits and exponent), times as timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timezone
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

R = TypeVar("R", bound=msgspec.Struct)
Key = Any  # a scalar for one-column keys, a tuple otherwise (what attrgetter returns)

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """`timestamptz` on PostgreSQL; on SQLite fixed-width RFC 3339 text, `2024-01-01T00:05:00.000000Z`.

    The fixed width keeps text order equal to time order. Formatting times was
    the largest cost of writing read models to SQLite (the dialect's DateTime
    processor, then even `isoformat`), so bulk writes hand this type msgspec's
    RFC 3339 text, made in C, and it only pads a missing fraction.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any]:
        return _to_text if dialect.name == "sqlite" else _to_utc

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None]:
        return _from_text if dialect.name == "sqlite" else _to_utc


def _to_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: read models store UTC-aware times only")
    return value.astimezone(timezone.utc)


def _to_text(value: datetime | str | None) -> str | None:
    if isinstance(value, str):  # msgspec's RFC 3339: a 6-digit fraction or none, "Z" for UTC
        if value.endswith("Z"):
            return value if len(value) == TEXT_TIME_WIDTH else f"{value[:-1]}.000000Z"
        value = datetime.fromisoformat(value)
    utc = _to_utc(value)
    return None if utc is None else utc.isoformat(timespec="microseconds")[:-6] + "Z"


def _from_text(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


TEXT_TIME_WIDTH = len("2024-01-01T00:05:00.000000Z")


# Amounts are exact decimal strings: SQLite has no exact numeric type and a string keeps the exponent too.
MONEY = sa.Text


class RowTable(Generic[R]):
    """A table and the struct its rows are; the key is the table's primary key."""

    def __init__(self, table: sa.Table, row: type[R], *, keep_last: int | None = None) -> None:
        self.table = table
        self.row = row
        self.name = table.name
        self.key_columns = tuple(c.name for c in table.primary_key.columns)
        self.key_of: Callable[[R], Key] = attrgetter(*self.key_columns)
        self.keep_last = keep_last  # keep only the rows with the largest keys
        missing = set(row.__struct_fields__) ^ {c.name for c in table.columns}
        if missing:
            raise TypeError(f"{table.name}: row fields and columns differ: {sorted(missing)}")

    def from_rows(self, rows: Iterable[Any]) -> list[R]:
        return msgspec.convert(list(rows), list[self.row], from_attributes=True)  # type: ignore[name-defined]

    def key_params(self, keys: Iterable[Key]) -> list[dict[str, Any]]:
        single = len(self.key_columns) == 1
        return msgspec.to_builtins(
            [dict(zip(self.key_columns, (k,) if single else k, strict=True)) for k in keys],
            builtin_types=(datetime, date),
        )


class Sink(Protocol):
    def put(self, table: RowTable[R], row: R) -> None: ...

    def delete(self, table: RowTable[R], row: R) -> None: ...


RowSource = Callable[[RowTable[R]], list[R]]


class RowMismatch(msgspec.Struct, frozen=True, kw_only=True):
    """A read-model row that is not what it should be."""

    table: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.table} row {self.key}: {self.message}"


class MemoryTables:
    """Every row of the read models, in memory."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, Any]] = {}

    def put(self, table: RowTable[R], row: R) -> None:
        rows = self.tables.setdefault(table.name, {})
        rows[table.key_of(row)] = row
        if table.keep_last is not None and len(rows) > table.keep_last:
            del rows[next(iter(rows))]  # keys arrive in increasing order: the first is the oldest

    def delete(self, table: RowTable[R], row: R) -> None:
        self.tables.get(table.name, {}).pop(table.key_of(row), None)

    def rows(self, table: RowTable[R]) -> list[R]:
        """The table's rows in key order (a `RowSource`)."""
        rows = self.tables.get(table.name, {})
        return [rows[key] for key in sorted(rows)]


class PendingChanges:
    """Rows changed since the last `drain`: the latest row per key, or None when deleted."""

    def __init__(self) -> None:
        # Keyed by the RowTable itself: `put` runs several times per event in a rebuild.
        self.tables: dict[RowTable[Any], dict[Key, Any]] = {}

    def put(self, table: RowTable[R], row: R) -> None:
        pending = self.tables.get(table)
        if pending is None:
            pending = self.tables[table] = {}
        pending[table.key_of(row)] = row
        if table.keep_last is not None and len(pending) > table.keep_last:
            # Rows pushed out within one batch never need writing at all.
            del pending[next(iter(pending))]

    def delete(self, table: RowTable[R], row: R) -> None:
        self.tables.setdefault(table, {})[table.key_of(row)] = None

    def drain(self) -> list[tuple[RowTable[Any], list[Any], list[Key]]]:
        """(table, rows to upsert, keys to delete) per changed table; empties the buffer."""
        changes = [
            (table, [r for r in pending.values() if r is not None],
             [k for k, r in pending.items() if r is None])
            for table, pending in self.tables.items()
        ]
        self.tables = {}
        return changes
