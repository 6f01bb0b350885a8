"""`tradeledger download`: exchange candles to Parquet (registered on import by `adapters.cli`).

On a terminal it draws a progress bar (rich) per symbol; otherwise it prints a
progress line at most every few seconds, so logs of scripts stay short.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from tradeledger.adapters.cliargs import command, option, out_directory, utc_time
from tradeledger.adapters.progress import Progress
from tradeledger.adapters.services.download import DownloadedFile, ProgressCall, download


def symbols(text: str) -> tuple[str, ...]:
    """An argparse type: `ETH/BTC,LTC/BTC`."""
    listed = tuple(item.strip() for item in text.split(",") if item.strip())
    if not listed:
        raise argparse.ArgumentTypeError(f"expected symbols such as ETH/BTC,LTC/BTC, got {text!r}")
    return listed


@command(
    "download",
    option("--exchange", metavar="NAME", help="a ccxt exchange id such as binance (default: exchange.name)"),
    option("--symbols", type=symbols, metavar="S,...",
           help="symbols, e.g. ETH/BTC,LTC/BTC (default: exchange.symbols, else trading.symbols)"),
    option("--timeframe", metavar="TF", help="e.g. 5m (default: exchange.timeframe, else trading.timeframe)"),
    option("--since", type=utc_time, required=True, metavar="T", help="first open time, e.g. 2024-01-01 (UTC)"),
    option("--until", type=utc_time, metavar="T", help="open times before T (default: up to now)"),
    option("--out", type=out_directory, required=True, metavar="DIR",
           help="directory for the files (created if new; its parent must exist)"),
    option("--api-url", metavar="URL", help="the exchange's REST base URL (overrides exchange.api_url)"),
    option("--verbose", action="store_true", help="list every gap"),
    store=False,
)
def download_command(args: argparse.Namespace, container: Any) -> int:
    settings = container.settings
    wanted = args.symbols or settings.exchange.symbols or settings.trading.symbols
    timeframe = args.timeframe or settings.exchange.timeframe or settings.trading.timeframe
    if args.until is not None and args.until <= args.since:
        print("tradeledger download: --until must be after --since", file=sys.stderr)
        return 2
    with progress_display(sys.stderr.isatty()) as progress:
        files = download(container.exchange(), wanted, timeframe, since=args.since, until=args.until, out=args.out,
                         progress=progress)
    if getattr(args, "json", False):
        sys.stdout.write(msgspec.json.encode(files).decode() + "\n")
    else:
        sys.stdout.write("\n".join(describe(file, verbose=args.verbose) for file in files) + "\n")
    return 0


def describe(file: DownloadedFile, *, verbose: bool) -> str:
    span = f"{file.first.isoformat()} to {file.last.isoformat()}" if file.first and file.last else "no candles"
    gaps = file.report.summary(verbose=verbose).splitlines()[1:] or ["no gaps"]
    r = file.rules
    rules = (f"market rules (market.* settings, docs/exchange.md): amount_step {r.amount_step}, price_step "
             f"{r.price_step}, min_amount {r.min_amount or 'none'}, min_notional {r.min_notional or 'none'}, "
             f"taker fee {r.taker_fee if r.taker_fee is not None else 'unknown'}")
    return "\n".join([f"{file.path}: {file.symbol} {file.timeframe}, {file.candles:,} candles ({span}), "
                      f"{file.fetched:,} fetched now; {file.report.missing_candles:,} missing at the exchange",
                      *(f"  {line}" for line in [*gaps, rules])])


@contextmanager
def progress_display(terminal: bool) -> Iterator[ProgressCall]:
    if not terminal:
        lines: dict[str, Progress] = {}

        def line(symbol: str, done: int, total: int) -> None:
            lines.setdefault(symbol, Progress(f"download {symbol}", total))(done)

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
             console=Console(stderr=True), transient=False) as bar:
        tasks: dict[str, Any] = {}

        def draw(symbol: str, done: int, total: int) -> None:
            if symbol not in tasks:
                tasks[symbol] = bar.add_task(symbol, total=total)
            bar.update(tasks[symbol], completed=done, total=max(total, done))

        yield draw

