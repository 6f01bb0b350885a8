"""Market data files in; validated candles and a data-quality report out.

Formats: CSV, Parquet, and JSON arrays of `[epoch_ms, open, high, low, close,
volume]` records (the shape exchange APIs return). A CSV or Parquet file names
its time column `date`, `datetime`, `time`, `timestamp` or `open_time` (any
case; the first of these that exists wins) or leaves the first column unnamed
(pandas-style index), and has `open`, `high`, `low`, `close`, `volume` (any
case). Times are ISO-8601 text (naive means UTC; offsets are converted to UTC),
Parquet datetimes (naive or aware, same rule), or epoch numbers: below 1e11
they are seconds (1e11 s is the year 5138), from there milliseconds.

Numbers become `Decimal` exactly as written: CSV and JSON text is never parsed
as a float, and a float stored in Parquet becomes `Decimal(repr(x))`, the
shortest text that reads back as that float.

Policy, never "fixing" anything silently:
- gaps (expected candles missing between consecutive open times: slots the
  market was open for, by `calendar`) are reported with the number of
  missing candles and never filled (`adapters.quality`);
- an invalid row (missing or unparseable value, a price outside [1E-8, 1E+12),
  a volume neither 0 nor in [1E-30, 1E+31), an open time outside 1970-01-01 to
  2200-01-01, high below low, open/close outside [low, high]; see
  `domain.values.Candle.check`) is excluded from `candles` and reported with
  its row number and reason;
- a JSON record holding an array or object (or a file nested beyond the
  parser's limit) makes the whole file unusable;
- a row repeating the timestamp of an earlier valid row is a duplicate: the
  first one wins, the later ones are excluded and reported;
- a row earlier than a preceding row is out of order: it is reported and
  kept, and the candles are returned sorted by time;
- rows are numbered from 1, counting data rows only (JSON: records);
- a file that cannot be read, lacks a required column or has no valid row
  raises `MarketDataError`, naming the file and the column or reason.

`symbol` defaults from the file name (`ETH_BTC-5m.csv` -> `ETH/BTC`) and
`timeframe` from its suffix (`-5m`), else from the most common spacing.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import NamedTuple

from typing import TYPE_CHECKING

import msgspec

from tradeledger.adapters.calendars import CalendarError, resolve_calendar
from tradeledger.adapters.errors import Refused
from tradeledger.adapters.marketframe import PRICES, VALUE_COLUMNS, sure_rows
from tradeledger.adapters.quality import InvalidRow, QualityReport, find_gaps
from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.sessions import ALWAYS_OPEN
from tradeledger.domain.values import Candle, require_open_time, timeframe_delta, timeframe_seconds

if TYPE_CHECKING:
    import polars as pl  # imported where a file is read: it is slow to import for every command

TIME_COLUMNS = ("date", "datetime", "time", "timestamp", "open_time")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECONDS_FROM = 10**11
_NAME_SUFFIX = re.compile(r"-(\d+[mhdw])$")
_TIMEFRAME_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60))

# One raw record: the time value, then open, high, low, close, volume as text (None when absent).
RawRow = Sequence[object]


class MarketDataError(Refused, ValueError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class MarketData(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    timeframe: str
    candles: list[Candle]
    report: QualityReport
    inferred: str | None = None  # what `market.calendar = auto` inferred, to tell the user


class _Parsed(NamedTuple):
    row: int
    open_time: datetime
    values: tuple[Decimal, ...]


class _Table(NamedTuple):
    sure: pl.DataFrame | None  # the certainly valid rows (`adapters.marketframe`), built in bulk
    others: list[tuple[int, RawRow]]  # every other row with its number, for the per-row parser
    rows: int


def load_candles(
    path: str | Path, *, symbol: str | None = None, timeframe: str | None = None, calendar: str = ALWAYS_OPEN.name
) -> MarketData:
    """Read a market data file; see the module docstring for formats and policy.

    `calendar` is a `market.calendar` value (`adapters.calendars`): the gaps are counted against its sessions.
    """
    path = Path(path)
    if timeframe is not None:
        _checked_timeframe(path, timeframe)  # a malformed argument fails before any reading
    table = _read_table(path)
    invalid: list[InvalidRow] = []
    parsed = list(_parse_rows(table.others, invalid))
    sure_times = [] if table.sure is None else [_EPOCH + timedelta(microseconds=t) for t in table.sure["us"].to_list()]
    name_symbol, name_timeframe = _name_parts(path)
    symbol = symbol or name_symbol
    timeframe = _checked_timeframe(
        path, timeframe or name_timeframe or _infer_timeframe(path, sure_times + [p.open_time for p in parsed])
    )
    built = _build_candles(parsed, symbol, timeframe, invalid)
    if table.sure is not None:
        built = _merged(_sure_candles(table.sure, sure_times, symbol, timeframe), built)
    candles, duplicates, out_of_order = _order(built)
    invalid.sort()
    if not candles:
        examples = "; ".join(str(entry) for entry in invalid[:3])
        raise MarketDataError(path, f"no valid rows among {table.rows}" + (f" ({examples})" if examples else ""))
    step = timeframe_delta(timeframe)
    try:
        sessions, inferred = resolve_calendar(calendar, candles, step)
    except CalendarError as error:
        raise MarketDataError(path, str(error)) from None
    report = QualityReport(
        rows=table.rows,
        gaps=find_gaps(candles, step, sessions),
        duplicates=duplicates,
        out_of_order=out_of_order,
        invalid=invalid,
        calendar=sessions.name,
    )
    return MarketData(symbol=symbol, timeframe=timeframe, candles=candles, report=report, inferred=inferred)


def _read_table(path: Path) -> _Table:
    import polars as pl

    readers = {".csv": _read_csv, ".parquet": _read_parquet, ".json": _read_json}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise MarketDataError(path, f"unsupported file type {path.suffix!r}; expected .csv, .parquet or .json")
    try:
        return reader(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, pl.exceptions.PolarsError) as error:
        raise MarketDataError(path, f"cannot read: {error}") from error


def _read_csv(path: Path) -> _Table:
    import polars as pl

    # Every column as text: the numbers must reach Decimal exactly as written.
    return _frame_table(_standard(path, pl.read_csv(path, infer_schema=False)))


def _read_parquet(path: Path) -> _Table:
    import polars as pl

    return _frame_table(_standard(path, pl.read_parquet(path)))


_JSON_SHAPE = "a JSON array of [epoch_ms, open, high, low, close, volume] records"


def _read_json(path: Path) -> _Table:
    try:
        records = json.loads(path.read_text(encoding="utf-8"), parse_float=str, parse_int=str)
    except RecursionError:
        raise MarketDataError(path, f"nested deeper than {_JSON_SHAPE}") from None
    if not isinstance(records, list):
        raise MarketDataError(path, f"expected {_JSON_SHAPE}")
    # A record that is not a list becomes a one-field row, which _parse_row reports as malformed.
    rows = [record if isinstance(record, list) else [record] for record in records]
    for number, row in enumerate(rows, start=1):
        # A container inside a record is refused here, before any report tries to print it.
        if any(isinstance(field, (list, dict)) for field in row):
            raise MarketDataError(path, f"record {number} is nested deeper than {_JSON_SHAPE}")
    if all(len(row) == 1 + len(VALUE_COLUMNS) and all(f is None or isinstance(f, str) for f in row) for row in rows):
        import polars as pl

        names = ("time", *VALUE_COLUMNS)
        return _frame_table(pl.DataFrame(list(zip(*rows)) or None, schema={n: pl.String for n in names}, orient="col"))
    return _Table(None, list(enumerate(rows, start=1)), len(rows))


def _standard(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """The time column as `time` and the value columns by their lower-case names, nothing else."""
    names = {name.strip().lower(): name for name in frame.columns}
    missing = [name for name in VALUE_COLUMNS if name not in names]
    if missing:
        raise MarketDataError(path, f"missing column {', '.join(missing)} (found {_listing(frame)})")
    time = _time_column(path, frame, names)
    return frame.select([frame[time].alias("time"), *(frame[names[name]].alias(name) for name in VALUE_COLUMNS)])


def _frame_table(frame: pl.DataFrame) -> _Table:
    sure = sure_rows(frame)
    others = frame.with_row_index("row", offset=1).join(sure.select("row"), on="row", how="anti", maintain_order="left")
    texts = [_texts(others[name]) for name in VALUE_COLUMNS]
    rows = [(number, raw) for number, *raw in zip(others["row"].to_list(), others["time"].to_list(), *texts)]
    return _Table(sure if len(sure) else None, rows, len(frame))


def _sure_candles(sure: pl.DataFrame, times: list[datetime], symbol: str, timeframe: str) -> list[tuple[int, Candle]]:
    # Checked already, as expressions (adapters.marketframe): constructed without Candle.check.
    prices: dict[str, Decimal] = {}
    values = [_decimals(_texts(sure[name]), prices) for name in PRICES] + [list(map(Decimal, _texts(sure["volume"])))]
    return [(row, Candle(symbol=symbol, timeframe=timeframe, open_time=time, open=o, high=h, low=lo, close=c, volume=v))
            for row, time, o, h, lo, c, v in zip(sure["row"].to_list(), times, *values)]


def _decimals(texts: list[str], cache: dict[str, Decimal]) -> list[Decimal]:
    """Equal texts share one Decimal (about 100 bytes each): prices repeat, within a column and across them."""
    cache.update((text, Decimal(text)) for text in set(texts).difference(cache))
    return list(map(cache.__getitem__, texts))


def _merged(first: list[tuple[int, Candle]], second: list[tuple[int, Candle]]) -> list[tuple[int, Candle]]:
    """Both lists (each by row number) as one, by row number."""
    return list(heapq.merge(first, second, key=itemgetter(0))) if second else first


def _time_column(path: Path, frame: pl.DataFrame, names: dict[str, str]) -> str:
    named = next((names[name] for name in TIME_COLUMNS if name in names), None)
    if named is not None:
        return named
    if frame.columns and _is_unnamed(frame.columns[0]):
        return frame.columns[0]
    raise MarketDataError(
        path,
        f"missing time column: expected one of {', '.join(TIME_COLUMNS)} "
        f"or an unnamed first column (found {_listing(frame)})",
    )


def _listing(frame: pl.DataFrame) -> str:
    return ", ".join(repr(name) for name in frame.columns)


def _is_unnamed(name: str) -> bool:
    return name.strip() == "" or name.lower().startswith("unnamed")


def _texts(series: pl.Series) -> list[str | None]:
    import polars as pl

    if series.dtype == pl.String:
        return series.to_list()
    if series.dtype.is_float():
        return [None if value is None else repr(value) for value in series.to_list()]
    return [None if value is None else str(value) for value in series.to_list()]


def _parse_rows(raw_rows: list[tuple[int, RawRow]], invalid: list[InvalidRow]) -> Iterator[_Parsed]:
    for number, raw in raw_rows:
        try:
            yield _parse_row(number, raw)
        except InvalidValue as error:
            invalid.append(_invalid(number, error))


def _parse_row(number: int, raw: RawRow) -> _Parsed:
    if len(raw) != 1 + len(VALUE_COLUMNS):
        raise InvalidValue("record", json.dumps(raw), "expected [time, open, high, low, close, volume]")
    values = tuple(_decimal(name, text) for name, text in zip(VALUE_COLUMNS, raw[1:]))
    # The time range is checked here, before the timeframe is inferred from these times.
    return _Parsed(number, require_open_time("time", _parse_time(raw[0])), values)


def _invalid(number: int, error: InvalidValue) -> InvalidRow:
    value = error.value
    text = "/".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return InvalidRow(number, error.field, text, error.reason)


def _decimal(field: str, text: object) -> Decimal:
    if text is None or str(text).strip() == "":
        raise InvalidValue(field, "''", "is missing")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InvalidValue(field, repr(text), "is not a number") from None
    if not value.is_finite():
        raise InvalidValue(field, repr(text), "is not a finite number")
    return value


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value is None or str(value).strip() == "":
        raise InvalidValue("time", "''", "is missing")
    text = str(value).strip()
    try:
        return _from_epoch(Decimal(text))
    except InvalidOperation:
        pass
    except (OverflowError, ValueError):
        raise InvalidValue("time", repr(text), "is not a representable epoch time") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue("time", repr(text), "is neither ISO-8601 nor epoch seconds/milliseconds") from None
    return _parse_time(parsed)


def _from_epoch(number: Decimal) -> datetime:
    if not number.is_finite():
        raise ValueError(number)
    # copy_abs, not abs(): abs() rounds in the context and overflows on 1E+999999999.
    milliseconds = number if number.copy_abs() >= _MILLISECONDS_FROM else number * 1000
    return _EPOCH + timedelta(milliseconds=float(milliseconds))


def _name_parts(path: Path) -> tuple[str, str | None]:
    """`ETH_BTC-5m.csv` -> (`ETH/BTC`, `5m`); no timeframe suffix -> (stem with / for _, None)."""
    match = _NAME_SUFFIX.search(path.stem)
    base = path.stem[: match.start()] if match else path.stem
    return base.replace("_", "/"), match.group(1) if match else None


def _checked_timeframe(path: Path, timeframe: str) -> str:
    try:
        timeframe_seconds(timeframe)
    except InvalidValue as error:
        raise MarketDataError(path, str(error)) from None
    return timeframe


def _infer_timeframe(path: Path, times: list[datetime]) -> str:
    ordered = sorted(set(times))
    spacings = Counter(int((b - a).total_seconds()) for a, b in zip(ordered, ordered[1:]))
    if not spacings:
        raise MarketDataError(path, "cannot infer the timeframe from fewer than two timestamps; pass timeframe")
    seconds = max(spacings, key=lambda spacing: (spacings[spacing], -spacing))
    for unit, size in _TIMEFRAME_UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise MarketDataError(path, f"most common spacing {seconds}s is not whole minutes; pass timeframe")


def _build_candles(
    parsed: list[_Parsed], symbol: str, timeframe: str, invalid: list[InvalidRow]
) -> list[tuple[int, Candle]]:
    candles = []
    for row, open_time, (open_, high, low, close, volume) in parsed:
        candle = Candle(
            symbol=symbol, timeframe=timeframe, open_time=open_time,
            open=open_, high=high, low=low, close=close, volume=volume,
        )  # fmt: skip
        try:
            candles.append((row, candle.check()))
        except InvalidValue as error:
            invalid.append(_invalid(row, error))
    return candles


def _order(candles: list[tuple[int, Candle]]) -> tuple[list[Candle], list[int], list[int]]:
    """Drop repeated timestamps (first wins), note rows earlier than a preceding one, sort."""
    seen: set[datetime] = set()
    kept: list[Candle] = []
    duplicates: list[int] = []
    out_of_order: list[int] = []
    latest: datetime | None = None
    for row, candle in candles:
        open_time = candle.open_time
        if open_time in seen:
            duplicates.append(row)
            continue
        seen.add(open_time)
        kept.append(candle)
        if latest is not None and open_time < latest:
            out_of_order.append(row)
        else:
            latest = open_time
    if out_of_order:
        kept.sort(key=attrgetter("open_time"))
    return kept, duplicates, out_of_order
