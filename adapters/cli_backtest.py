"""`backtest`: the agent over candle files as fast as it can (registered on import by `adapters.cli`)."""

from __future__ import annotations

import argparse
import sys

import msgspec

from tradeledger.adapters.cliargs import BATCHES, PARAM, PREDICTOR, STRATEGY, command, emit, integer, option
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.inputfile import input_file
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.markets import data_settings
from tradeledger.adapters.progress import Progress
from tradeledger.adapters.services import backtest


@command(
    "backtest", "run the agent over a candle file as fast as it can, recording everything; print a summary",
    option("--data", required=True, metavar="PATH", help="CSV, Parquet or JSON candles"),
    option("--symbol", metavar="S", help="symbol (default: from the file name, e.g. ETH_BTC-5m.csv -> ETH/BTC)"),
    option("--timeframe", metavar="TF", help="timeframe (default: from the file name or the spacing)"),
    PREDICTOR,
    STRATEGY,
    PARAM,
    option("--batch", type=integer(*BATCHES), default=2000, metavar="N", help="ticks per transaction (default 2000)"),
    option("--verbose", action="store_true", help="list every gap and every bad row of the data report"),
)
def backtest_command(args: argparse.Namespace, container: Composition) -> int:
    data = load_candles(args.data, symbol=args.symbol, timeframe=args.timeframe,
                        calendar=container.settings.market.calendar)
    settings = data_settings(container.settings, data)
    for line in (data.inferred, data.report.summary(verbose=args.verbose)):
        if line:
            print(line, file=sys.stderr)
    result = backtest.run(container.agent(settings), container.feed, data.candles, batch_size=args.batch,
                          progress=Progress("backtest", len(data.candles)), data=input_file(args.data))
    emit(args, msgspec.structs.replace(result, data=data.report), backtest.describe(result))
    return 0
