"""`backtest`: the agent over candle files as fast as it can (registered on import by `adapters.cli`)."""

from __future__ import annotations

import argparse
import sys

import msgspec

from tradeledger.adapters import cli_report
from tradeledger.adapters.cliargs import BATCHES, PARAM, PREDICTOR, STRATEGY, command, emit, fail, integer, option
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.candlefiles import CandleFiles, load_files
from tradeledger.adapters.markets import data_settings
from tradeledger.adapters.progress import Progress
from tradeledger.adapters.services import backtest, readmodels


@command(
    "backtest",
    option("--data", required=True, action="append", metavar="PATH",
           help="CSV, Parquet or JSON candles; repeat it, or give a directory, to trade several pairs in one "
                "account (docs/portfolios.md)"),
    option("--symbol", metavar="S", help="symbol of the one file (default: from the file name, e.g. ETH_BTC-5m.csv "
                                         "-> ETH/BTC)"),
    option("--timeframe", metavar="TF", help="timeframe of the one file (default: from the file name or the spacing)"),
    PREDICTOR,
    STRATEGY,
    PARAM,
    option("--batch", type=integer(*BATCHES), default=2000, metavar="N", help="ticks per transaction (default 2000)"),
    option("--verbose", action="store_true", help="list every gap and every bad row of the data report"),
    *cli_report.BACKTEST_OPTIONS,
    durable=False,  # a run to repeat from its files, not a history to keep through a power loss
)
def backtest_command(args: argparse.Namespace, container: Composition) -> int:
    readmodels.bulk_gc()
    data = load_files(args.data, symbol=args.symbol, timeframe=args.timeframe,
                      calendar=container.settings.market.calendar)
    settings = data_settings(container.settings, data.markets)
    report_data(data, verbose=args.verbose)
    candles = cli_report.in_timerange(data.candles, args.timerange)
    if not candles:
        return fail("backtest", f"--timerange: no candles of the data in {cli_report.shown(args.timerange)}")
    readmodels.keep_loaded()
    # A backtest is run again rather than resumed: one checkpoint at its clean stop is enough for an agent
    # continuing the store, and each one on the way (river models: up to 140 ms) would only slow it down.
    result = backtest.run(container.agent(settings, checkpoint_every=0), container.feed, candles, batch_size=args.batch,
                          progress=Progress("backtest", len(candles)), data=data.identities(),
                          breakdown=args.breakdown)
    reports = {f.path.name: f.data.report for f in data.files}
    single = data.markets[0].report if len(data.files) == 1 else None
    text = backtest.describe(result) + "\n\n" + cli_report.tables(result.metrics)
    if args.report is not None:
        cli_report.html_from_log(args.report, container.feed, settings.trading.account, args.breakdown,
                                 title="backtest " + ", ".join(sorted(m.symbol for m in data.markets)))
        text += f"html: {args.report}"
    emit(args, msgspec.structs.replace(result, data=single, data_files=reports), text)
    return 0


def report_data(data: CandleFiles, *, verbose: bool) -> None:
    """Each file's data report on stderr (named by the file when there are several)."""
    for file in data.files:
        name = f"{file.path.name}: " if len(data.files) > 1 else ""
        for text in (file.data.inferred, file.data.report.summary(verbose=verbose)):
            for line in (text or "").splitlines():
                print(name + line, file=sys.stderr)
