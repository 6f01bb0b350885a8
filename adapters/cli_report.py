"""`report`: the metrics of any store's history or a span of it (registered on import by `adapters.cli`); the
options and argument types `backtest` shares with it."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeledger.adapters.cliargs import command, emit, fail, new_file, option, utc_time
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.services import readmodels
from tradeledger.adapters.services import metrics
from tradeledger.adapters.services.metrics import PERIODS, Metrics, Period, Report
from tradeledger.domain.values import Candle
from tradeledger.projections.runner import EventFeed

BREAKDOWN = option("--breakdown", choices=PERIODS, help="also a table of the trades by day, week or month of exit")
# Freqtrade's --timerange: START-, -END or START-END; each YYYYMMDD or unix seconds, UTC.
DAY_FORMAT = "%Y%m%d"
DAY_DIGITS = 8


def decimal_in(low: Decimal, high: Decimal, *, high_included: bool = False) -> Any:
    """An argparse type: a decimal in [low, high) (or [low, high])."""
    shown = f"from {low} to {high}" if high_included else f">= {low} and < {high}"

    def parse(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or not (low <= value <= high if high_included
                                                           else low <= value < high):
            raise argparse.ArgumentTypeError(f"expected a decimal {shown}, got {text}")
        return value

    return parse


def timerange(text: str) -> tuple[datetime | None, datetime | None]:
    """An argparse type: Freqtrade's time range; the start is included, the end is not."""
    start, dash, end = text.partition("-")
    try:
        if not dash or not (start or end):
            raise ValueError
        bounds = (moment(start) if start else None, moment(end) if end else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START-END, START- or -END (YYYYMMDD or unix seconds), got {text}"
                                         ) from None
    if bounds[0] is not None and bounds[1] is not None and bounds[0] >= bounds[1]:
        raise argparse.ArgumentTypeError(f"the start must be before the end, got {text}")
    return bounds


def moment(text: str) -> datetime:
    """YYYYMMDD (8 digits), or unix seconds (more)."""
    if not text.isdigit() or len(text) < DAY_DIGITS:
        raise ValueError(text)
    if len(text) == DAY_DIGITS:
        return datetime.strptime(text, DAY_FORMAT).replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(int(text), timezone.utc)


BACKTEST_OPTIONS = (
    option("--timerange", type=timerange, metavar="START-END",
           help="only the candles from START (included) to END (not): YYYYMMDD or unix seconds, UTC; START- or "
                "-END leave one side open (Freqtrade's syntax), e.g. 20180115-20180125"),
    option("--fee", type=decimal_in(Decimal(0), Decimal(1)), metavar="RATE",
           help="fee rate of each fill, e.g. 0.001 (overrides trading.fee_rate)"),
    option("--slippage-bps", type=decimal_in(Decimal(0), Decimal(10_000)), metavar="BPS",
           help="slippage in basis points against each fill (overrides trading.slippage_bps)"),
    option("--initial-balance", type=decimal_in(Decimal("1E-8"), Decimal("1E+12"), high_included=True),
           metavar="AMOUNT", help="the account's opening balance (overrides trading.initial_balance)"),
    BREAKDOWN,
    option("--report", type=new_file, metavar="FILE.html",
           help="also write the HTML report: candles with the trades, equity and drawdown, metrics, trade list"),
)


def in_timerange(candles: Sequence[Candle], bounds: tuple[datetime | None, datetime | None] | None) -> list[Candle]:
    if bounds is None:
        return list(candles)
    start, end = bounds
    return [c for c in candles if (start is None or c.open_time >= start) and (end is None or c.open_time < end)]


def shown(bounds: tuple[datetime | None, datetime | None]) -> str:
    return " .. ".join(t.isoformat() if t else "" for t in bounds)


def tables(measured: Metrics) -> str:
    from tradeledger.adapters.metrics_format import tables as rendered  # rich, only for commands that print

    return rendered(measured)


def write_html(path: Path, report: Report) -> None:
    from tradeledger.adapters.report_html import render  # the renderer (and its chart library) only when asked

    path.write_text(render(report), encoding="utf-8")


def html_from_log(path: Path, feed: EventFeed, account: str, breakdown: Period | None, *, title: str) -> None:
    from tradeledger.adapters.services.metrics_log import collect

    write_html(path, metrics.report(collect(feed, account, with_models=True), title=title, breakdown=breakdown))


@command(
    "report",
    option("--from", dest="start", type=utc_time, metavar="T", help="from business time T (ISO-8601; naive is UTC)"),
    option("--to", dest="end", type=utc_time, metavar="T", help="up to business time T, included"),
    BREAKDOWN,
    option("--account", metavar="NAME", help="the account (default: trading.account)"),
    option("--html", type=new_file, metavar="FILE", help="also write the report as one self-contained HTML file"),
    reads="log",
)
def report_command(args: argparse.Namespace, container: Composition) -> int:
    from tradeledger.adapters.services.metrics_log import collect

    if args.start is not None and args.end is not None and args.start > args.end:
        return fail("report", "--to: must not be before --from")
    account = args.account or container.settings.trading.account
    readmodels.bulk_gc()
    try:
        history = collect(container.feed, account, until=container.feed.head(),  # read-only, from the log alone
                          with_models=args.html is not None)
    except LookupError as error:
        return fail("report", str(error.args[0]))
    if args.html is None:
        measured = metrics.compute(history, start=args.start, end=args.end, breakdown=args.breakdown)
    else:
        span = shown((args.start, args.end)) if args.start or args.end else ""
        drawn = metrics.report(history, title=f"report {account} {span}".strip(),
                               start=args.start, end=args.end, breakdown=args.breakdown)
        write_html(args.html, drawn)
        measured = drawn.metrics
    emit(args, measured, tables(measured) + (f"html: {args.html}" if args.html else ""))
    return 0
