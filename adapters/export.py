"""`tradeledger export`: orders, fills, trades, signals, the equity curve and the event log as Parquet or CSV files.

Amounts keep every digit: Parquet gets decimal128(38, s) with the largest
scale found in the column; CSV writes those decimals in full. Times are UTC.
Nested values (signal features, ensemble members, event data) are JSON text.

Both clocks: `events` has each event's business time (`at`) and recorded time
(`recorded_at`, the wall clock at append); the rows that name the log position
that made them (fills, signals) get that event's `recorded_at` as a column too.
"""

from __future__ import annotations

import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from collections.abc import Iterable
from typing import Any, Literal
from uuid import UUID

import msgspec
import polars as pl

from tradeledger.adapters.eventlog import EventRecord
from tradeledger.projections.portfolio_rows import EQUITY, FILLS, ORDERS, TRADES
from tradeledger.projections.rows import RowSource, RowTable
from tradeledger.projections.signals import SIGNALS

Format = Literal["parquet", "csv"]
EXPORTS: dict[str, RowTable[Any]] = {"orders": ORDERS, "fills": FILLS, "trades": TRADES, "signals": SIGNALS,
                                     "equity": EQUITY}
SCALAR_TYPES: dict[type, pl.DataType] = {
    str: pl.String(), int: pl.Int64(), float: pl.Float64(), bool: pl.Boolean(), date: pl.Date(),
    datetime: pl.Datetime("us", "UTC"), UUID: pl.String(),
}
DEFAULT_SCALE = 12  # an empty decimal column still needs one; 12 is the ledger's money quantum
UTC_TIME = pl.Datetime("us", "UTC")
EVENT_SCHEMA = {"position": pl.Int64(), "stream": pl.String(), "version": pl.Int64(), "type": pl.String(),
                "at": UTC_TIME, "recorded_at": UTC_TIME, "data": pl.String()}


def export(rows: RowSource[Any], out: Path, fmt: Format, log: Iterable[EventRecord]) -> dict[str, Path]:
    """Write one file per read model (its rows from `rows`) and one of the event log `log`; the path of each."""
    out.mkdir(exist_ok=True)
    events = events_frame(log)
    recorded = events.select("position", "recorded_at")
    frames = {}
    for name, table in EXPORTS.items():
        frame = to_frame(table, rows(table))
        if "position" in frame.columns:
            frame = frame.join(recorded, on="position", how="left", maintain_order="left")
        frames[name] = frame
    frames["events"] = events
    written = {}
    for name, frame in frames.items():
        path = written[name] = out / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.write_parquet(path)
        else:
            frame.write_csv(path)
    return written


def events_frame(log: Iterable[EventRecord]) -> pl.DataFrame:
    rows = [(r.position, r.stream, r.version, r.type, r.at, r.recorded_at, msgspec.json.encode(r.data).decode())
            for r in log]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")


def to_frame(table: RowTable[Any], rows: list[Any]) -> pl.DataFrame:
    data = msgspec.to_builtins(rows, builtin_types=(datetime, date, Decimal))
    hints = {name: _scalar(hint) for name, hint in typing.get_type_hints(table.row).items()}
    schema = {name: column_type(hints[name], [r[name] for r in data]) for name in table.row.__struct_fields__}
    nested = [name for name in schema if _is_nested(hints[name])]
    for row in data:
        for name in nested:
            row[name] = msgspec.json.encode(row[name]).decode()
    return pl.DataFrame(data, schema=schema, orient="row")


def column_type(scalar: Any, values: list[Any]) -> pl.DataType:
    if scalar is Decimal:
        return decimal_type([v for v in values if v is not None])
    return SCALAR_TYPES.get(scalar, pl.String())  # enums, tuples, dicts, structs: text


def decimal_type(values: list[Decimal]) -> pl.DataType:
    """The smallest decimal128 scale that holds every value exactly, within 38 digits."""
    if not values:
        return pl.Decimal(38, DEFAULT_SCALE)
    scale = max(max(0, -v.as_tuple().exponent) for v in values)
    whole = max(max(1, v.adjusted() + 1) for v in values)
    return pl.Decimal(38, min(scale, 38 - whole))


def _scalar(hint: Any) -> Any:
    """`X | None` -> X."""
    args = typing.get_args(hint)
    return next(a for a in args if a is not type(None)) if type(None) in args else hint


def _is_nested(scalar: Any) -> bool:
    is_enum = isinstance(scalar, type) and issubclass(scalar, Enum)
    return scalar is not Decimal and scalar not in SCALAR_TYPES and not is_enum
