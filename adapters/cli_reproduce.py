"""The `reproduce` command's work (`adapters.cli` declares it): re-run and count, check the input, what-if."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from tradeledger.adapters.cliargs import STRATEGY, command, fail, option, setting_value
from tradeledger.adapters.progress import Progress
from tradeledger.adapters.reproduce_format import describe_reproduce, describe_what_if
from tradeledger.adapters.services.reproduce import reproduce
from tradeledger.adapters.services.reproduce_data import DataUnreadable, check_data
from tradeledger.adapters.services.whatif import WhatIfError, ignored_settings, what_if
from tradeledger.adapters.strategies import resolved
from tradeledger.domain.trader import Trader
from tradeledger.settings import Settings

OPTIONS = (
    option("--all", dest="every", action="store_true",
           help="go on past the first divergence and count every one, by kind (default: stop at the first)"),
    option("--data", action="append", metavar="FILE",
           help="also check that FILE is the recorded input: its SHA-256 and its candles (repeatable, or a "
                "directory: each file of a portfolio)"),
    option("--with", dest="overrides", action="append", type=setting_value, metavar="KEY=VALUE",
           help="what-if: re-run the recorded candles with this decision setting changed (repeatable), in memory, "
                "and show the outcome beside the recorded one"),
)


@command("reproduce", STRATEGY, *OPTIONS, reads="log")
def reproduce_command(args: argparse.Namespace, container: Any) -> int:
    if args.overrides:
        if args.every or args.data:
            return fail("reproduce", "--with runs a what-if replay; give it without --all and --data")
        container.recorded_trader_factory()  # refuses a strategy other than the one that decided the history
        try:
            report = what_if(container.feed, container.settings, dict(args.overrides),
                             lambda settings: trader_factory(container, settings), progress=Progress("what-if"))
        except WhatIfError as error:
            return fail("reproduce", str(error))
        output(args, report, describe_what_if(report))
        return 0
    try:
        data = check_data(container.feed, args.data)
    except DataUnreadable as error:
        return fail("reproduce", str(error))
    report = reproduce(container.feed, container.recorded_trader_factory(), every=args.every,
                       blobs=container.checkpoint_blobs)
    ignored = ignored_settings(container.feed, container.settings)
    report = msgspec.structs.replace(report, ok=report.ok and all(check.ok for check in data),
                                     data=data[0] if len(data) == 1 else None, data_files=data,
                                     ignored_settings=ignored)
    if ignored and not args.json:
        print("warning: these settings differ from the recorded ones, which reproduce uses (yours are ignored): "
              + ", ".join(f"{key} recorded {old}, now {new}" for key, (old, new) in ignored.items()), file=sys.stderr)
    output(args, report, describe_reproduce(report))
    return 0 if report.ok else 1


def trader_factory(container: Any, settings: Settings) -> Callable[[], Trader]:
    """Traders for a what-if: `settings` with the user strategy they name loaded, as `reproduce` loads it."""
    strategy, settings = resolved(settings)
    return container.trader_factory(settings, strategy)


def output(args: argparse.Namespace, value: msgspec.Struct, text: str) -> None:
    sys.stdout.write((msgspec.json.encode(value).decode() if args.json else text.rstrip("\n")) + "\n")
