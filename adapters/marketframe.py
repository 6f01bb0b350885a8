"""The rows of a candle file that are valid beyond doubt, found with polars expressions over whole columns.

`adapters.marketdata` builds these rows' candles in bulk and sends every other row through its per-row
parser, which alone words the errors and reports, so a row is taken here only when it is certainly valid.
Floats prove it: rounding to the nearest float never reverses an order, so `float(a) < float(b)` implies
`a < b` for the exact decimals, and equal values as written are equal decimals. A row that depends on a
tie between different texts, on a bound itself, or on a time or number format outside the plain ones
below is left to the per-row parser (slower, same result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeledger.domain.values import EARLIEST_OPEN, LATEST_OPEN, MAX_PRICE, MAX_VOLUME, MIN_PRICE, MIN_VOLUME

if TYPE_CHECKING:
    import polars as pl

VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
PRICES = VALUE_COLUMNS[:4]
# Times Python's fromisoformat and polars read alike (naive is UTC), and plain epoch digits.
ISO = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?$"
DIGITS = r"^[0-9]{1,15}$"
NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"  # a text Decimal and polars both read
ZERO = r"^[+-]?(0+\.?0*|\.0+)([eE][+-]?[0-9]+)?$"
MILLISECONDS_FROM = 10**11  # epoch numbers below are seconds (as adapters.marketdata)
UNTIL_US = int((LATEST_OPEN - EARLIEST_OPEN).total_seconds()) * 10**6


def sure_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` (columns `time` and VALUE_COLUMNS) cut to its certainly valid rows, with `row` (numbered
    from 1) and `us` (the open time in microseconds since 1970-01-01 UTC) added."""
    import polars as pl

    numbered = frame.with_row_index("row", offset=1).with_columns(us=_epoch_us(frame.schema["time"]))
    return numbered.filter(pl.col("us").is_between(0, UNTIL_US, closed="left") & _values_valid(frame.schema))


def _epoch_us(dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    time = pl.col("time")
    if dtype == pl.String:
        iso = time.str.replace(" ", "T").str.replace("Z$", "+00:00")
        iso = pl.when(iso.str.contains("[+-][0-9]{2}:[0-9]{2}$")).then(iso).otherwise(iso + "+00:00")
        parsed = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False).dt.epoch("us")
        digits = _from_epoch(time.cast(pl.Int64, strict=False))
        return pl.when(time.str.contains(ISO)).then(parsed).when(time.str.contains(DIGITS)).then(digits)
    if dtype.is_integer():
        return _from_epoch(time.cast(pl.Int64, strict=False))
    if isinstance(dtype, pl.Datetime):
        utc = time.dt.replace_time_zone("UTC") if dtype.time_zone is None else time.dt.convert_time_zone("UTC")
        return utc.dt.epoch("us")
    if dtype == pl.Date:
        return time.cast(pl.Datetime("us")).dt.epoch("us")
    return pl.lit(None, dtype=pl.Int64)


def _from_epoch(number: pl.Expr) -> pl.Expr:
    import polars as pl

    return pl.when(number < MILLISECONDS_FROM).then(number * 10**6).otherwise(number * 1000)


def _values_valid(schema: pl.Schema) -> pl.Expr:
    import polars as pl

    exact = {name: _exact(name, schema[name]) for name in VALUE_COLUMNS}
    value = {name: _float(name, schema[name]) for name in VALUE_COLUMNS}

    def at_most(low: str, high: str) -> pl.Expr:
        return (value[low] < value[high]) | (pl.col(low) == pl.col(high))

    prices = [(value[p] > float(MIN_PRICE)) & (value[p] < float(MAX_PRICE)) for p in PRICES]
    volume = ((value["volume"] > float(MIN_VOLUME)) & (value["volume"] < float(MAX_VOLUME))) | _zero(schema)
    relations = [at_most("low", "high"), at_most("low", "open"), at_most("open", "high"),
                 at_most("low", "close"), at_most("close", "high")]
    return pl.all_horizontal(*exact.values(), *prices, volume, *relations).fill_null(False)


def _exact(name: str, dtype: pl.DataType) -> pl.Expr:
    """True where the value's text is one both readers take the same way."""
    import polars as pl

    if dtype == pl.String:
        return pl.col(name).str.contains(NUMBER)
    return pl.lit(dtype.is_numeric())


def _float(name: str, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.String or dtype.is_numeric():
        return pl.col(name).cast(pl.Float64, strict=False)
    return pl.lit(None, dtype=pl.Float64)


def _zero(schema: pl.Schema) -> pl.Expr:
    import polars as pl

    if schema["volume"] == pl.String:
        return pl.col("volume").str.contains(ZERO)
    return pl.col("volume").cast(pl.Float64, strict=False) == 0
