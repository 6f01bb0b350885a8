"""The auditor's commands: `explain`, `journal`, `trial-balance` (registered on import by `adapters.cli`)."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from tradeledger.adapters.cliargs import LOG_POSITIONS, command, fail, integer, option, utc_time
from tradeledger.adapters.books_format import (BALANCE_COLUMNS, JOURNAL_COLUMNS, csv_text, describe_explanation,
                                                 describe_journal, describe_trial_balance)
from tradeledger.adapters.services.books import journal, trial_balance
from tradeledger.adapters.services.explain import NotExplained, explain

CSV = option("--csv", action="store_true", help="CSV output (one row per line, a header first)")


def order_id(text: str) -> uuid.UUID:
    """An argparse type: an order id (a UUID)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an order id (a UUID), got {text}") from None


def output(args: argparse.Namespace, value: Any, text: str, rows: Sequence[msgspec.Struct] = (),
           columns: Sequence[str] = ()) -> None:
    """`--json` the struct, `--csv` the rows, otherwise the text."""
    if args.json:
        text = msgspec.json.encode(value).decode()
    elif getattr(args, "csv", False):
        text = csv_text(rows, columns)
    sys.stdout.write(text.rstrip("\n") + "\n")


@command("explain",
         option("order_id", nargs="?", type=order_id, metavar="ORDER_ID", help="the order's id"),
         option("--position", type=integer(*LOG_POSITIONS), metavar="N",
                help="the log position of the order, its fill, its signal or its candle"),
         reads="log")
def explain_command(args: argparse.Namespace, container: Any) -> int:
    if (args.order_id is None) == (args.position is None):
        return fail("explain", "give either ORDER_ID or --position N")
    try:
        explanation = explain(container.feed, order_id=args.order_id, position=args.position)
    except NotExplained as error:
        return fail("explain", str(error))
    output(args, explanation, describe_explanation(explanation))
    return 0


@command("journal",
         option("--from", dest="start", type=utc_time, metavar="ISO-8601",
                help="only lines of a business time >= this (a naive time is UTC)"),
         option("--to", dest="end", type=utc_time, metavar="ISO-8601", help="only lines of a business time <= this"),
         option("--account", metavar="NAME", help="only this ledger account, e.g. cash:BTC or expense:fees"),
         CSV, reads="log")
def journal_command(args: argparse.Namespace, container: Any) -> int:
    if args.json and args.csv:
        return fail("journal", "give at most one of --json and --csv")
    entries = journal(container.feed, start=args.start, end=args.end, account=args.account)
    output(args, entries, describe_journal(entries), entries, JOURNAL_COLUMNS)
    return 0


@command("trial-balance",
         option("--as-of", type=utc_time, metavar="ISO-8601",
                help="business time: up to the last account or market event about a market time <= this"),
         option("--position", type=integer(*LOG_POSITIONS), metavar="N", help="events at log positions <= N"),
         CSV, reads="log")
def trial_balance_command(args: argparse.Namespace, container: Any) -> int:
    if args.json and args.csv:
        return fail("trial-balance", "give at most one of --json and --csv")
    if args.as_of is not None and args.position is not None:
        return fail("trial-balance", "give at most one of --as-of and --position")
    report = trial_balance(container.feed, position=args.position, as_of=args.as_of)
    output(args, report, describe_trial_balance(report), report.balances, BALANCE_COLUMNS)
    return 0
