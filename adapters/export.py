"""`tradeledger export`: the log and everything folded from it, as Parquet or CSV files, one per table.

Built from the log alone, in one pass up to one position (the head when the
export starts): the event log itself (`events`), the read models folded afresh
in memory (`orders`, `fills`, `trades`, the latest `signals` per market,
`equity`; the read-model tables are never read, so stale or empty ones do not
matter), and the tables no read model keeps (`adapters/export_rows.py`):
every signal (`signal_history`), the `candles`, the `journal` lines,
`rejections`, `halts` (and resumes) and the `account` (opening balance and
totals). docs/audit.md lists every column.

Amounts keep every digit: Parquet gets decimal128(38, s) with the largest
scale found in the column; CSV writes those decimals in full. Times are UTC.
Nested values (signal features, ensemble members, halt metrics, event data)
are JSON text.

Both clocks: `events` has each event's business time (`at`) and recorded time
(`recorded_at`, the wall clock at append); every row that names the log
position that made it has that event's `recorded_at` as a column too (an
order: the position of its `OrderPlaced`; its business time is `placed_at`).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import msgspec
import polars as pl

from tradeledger.adapters.eventlog import to_record
from tradeledger.adapters.export_rows import (AccountTotalsRow, CandleRow, HaltRow, JournalLineRow, LogRows,
                                              RejectionRow, SignalLogRow)
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_rows import EQUITY, FILLS, ORDERS, TRADES
from tradeledger.projections.replay import ReadModels, pages
from tradeledger.projections.rows import RowTable
from tradeledger.projections.runner import EventFeed
from tradeledger.projections.signals import SIGNALS, SIGNALS_PROJECTION

Format = Literal["parquet", "csv"]
# Called last, once every table is written: adds the evidence files (and their manifest); what it wrote, by name.
Evidence = Callable[[Path, Format, dict[str, Path]], dict[str, Path]]
READ_MODELS: dict[str, RowTable[Any]] = {"orders": ORDERS, "fills": FILLS, "trades": TRADES, "signals": SIGNALS,
                                         "equity": EQUITY}
SCALAR_TYPES: dict[type, pl.DataType] = {
    str: pl.String(), int: pl.Int64(), float: pl.Float64(), bool: pl.Boolean(), date: pl.Date(),
    datetime: pl.Datetime("us", "UTC"), UUID: pl.String(),
}
DEFAULT_SCALE = 12  # an empty decimal column still needs one; 12 is the ledger's money quantum
UTC_TIME = pl.Datetime("us", "UTC")
EVENT_SCHEMA = {"position": pl.Int64(), "stream": pl.String(), "version": pl.Int64(), "type": pl.String(),
                "at": UTC_TIME, "recorded_at": UTC_TIME, "data": pl.String()}


def export(feed: EventFeed, out: Path, fmt: Format, *, until: int, evidence: Evidence | None = None
           ) -> dict[str, Path]:
    """Write every table folded from the log up to position `until`, one file each; the path of each by name."""
    out.mkdir(exist_ok=True)
    models, logged, events = ReadModels((PORTFOLIO, SIGNALS_PROJECTION)), LogRows(), []
    for page in pages(feed, until=until):
        models.apply(page)
        logged.apply(page)
        events.extend(event_row(recorded) for recorded in page)
    frames = {name: to_frame(table.row, models.tables.rows(table)) for name, table in READ_MODELS.items()}
    frames |= {
        "signal_history": to_frame(SignalLogRow, logged.signals), "candles": to_frame(CandleRow, logged.candles),
        "journal": to_frame(JournalLineRow, logged.journal), "rejections": to_frame(RejectionRow, logged.rejections),
        "halts": to_frame(HaltRow, logged.halts),
        "account": to_frame(AccountTotalsRow, logged.account_rows(models.tables.rows, until)),
    }
    frames["events"] = pl.DataFrame(events, schema=EVENT_SCHEMA, orient="row")
    placed = pl.DataFrame({"order_id": [str(o) for o in logged.placed], "position": list(logged.placed.values())},
                          schema={"order_id": pl.String(), "position": pl.Int64()})
    frames["orders"] = frames["orders"].join(placed, on="order_id", how="left", maintain_order="left")
    recorded = frames["events"].select("position", "recorded_at")
    for name in ("orders", "fills", "signals"):  # read-model rows that name their event: give them its recorded time
        frames[name] = frames[name].join(recorded, on="position", how="left", maintain_order="left")
    written = {name: write(frame, out / f"{name}.{fmt}", fmt) for name, frame in frames.items()}
    if evidence is not None:
        written |= evidence(out, fmt, written)
    return written


def write(frame: pl.DataFrame, path: Path, fmt: Format) -> Path:
    if fmt == "parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    return path


def event_row(recorded: Any) -> tuple[Any, ...]:
    r = to_record(recorded)
    return r.position, r.stream, r.version, r.type, r.at, r.recorded_at, msgspec.json.encode(r.data).decode()


def to_frame(row: type[msgspec.Struct], rows: list[Any]) -> pl.DataFrame:
    """One column per field of the row struct, typed from its hints (decimals exact, nested values as JSON)."""
    data = msgspec.to_builtins(rows, builtin_types=(datetime, date, Decimal))
    hints = {name: _scalar(hint) for name, hint in typing.get_type_hints(row).items()}
    schema = {name: column_type(hints[name], [r[name] for r in data]) for name in row.__struct_fields__}
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
