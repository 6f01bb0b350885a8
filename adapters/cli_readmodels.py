"""The read models from the log: `rebuild` them, or `replay` the portfolio as it was at a cut."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from typing import TYPE_CHECKING

from tradeledger.adapters.cliargs import LOG_POSITIONS, PAGE_SIZES, command, emit, integer, option, utc_time
from tradeledger.adapters.services import readmodels
from tradeledger.projections.portfolio_view import AccountPortfolio
from tradeledger.projections.rebuild import RebuildFailed

if TYPE_CHECKING:
    from tradeledger.adapters.composition import Composition


@command("rebuild",
         option("names", nargs="*", metavar="NAME", help="portfolio, signals, health, activity, connections, ..."),
         option("--page-size", type=integer(*PAGE_SIZES), default=readmodels.PAGE_SIZE, metavar="N",
                help=f"events per transaction (default {readmodels.PAGE_SIZE})"))
def rebuild_command(args: argparse.Namespace, container: Composition) -> int:
    readmodels.bulk_gc()
    try:
        result = readmodels.rebuild(container.feed, container.engine, args.names, page_size=args.page_size)
    except ValueError as error:
        print(f"tradeledger rebuild: {error}", file=sys.stderr)
        return 2
    except RebuildFailed as error:
        print(f"tradeledger rebuild: failed, the read models are unchanged: {error}", file=sys.stderr)
        return 2
    emit(args, result, f"rebuilt {', '.join(result.projections)} from {result.events:,} events in "
                       f"{result.seconds:.2f}s ({result.events_per_second:,.0f} events/s)")
    return 0


@command("replay",
         option("--as-of", type=utc_time, metavar="ISO-8601",
                help="business time: up to the last account or market event about a "
                "market time <= this (a naive time is UTC)"),
         option("--recorded-at", type=utc_time, metavar="ISO-8601",
                help="recorded time: up to the last event appended at a wall "
                "time <= this, what the system held then (a naive time is UTC)"),
         option("--position", type=integer(*LOG_POSITIONS), metavar="N", help="events at log positions <= N"),
         option("--account", metavar="NAME", help="the account (default: trading.account)"),
         reads="log")
def replay_command(args: argparse.Namespace, container: Composition) -> int:
    cuts = [flag for flag, value in (("--as-of", args.as_of), ("--recorded-at", args.recorded_at),
                                              ("--position", args.position)) if value is not None]
    if len(cuts) != 1:
        print("tradeledger replay: give exactly one of --as-of, --recorded-at and --position", file=sys.stderr)
        return 2
    readmodels.bulk_gc()
    account = args.account or container.settings.trading.account
    view = readmodels.portfolio_at(container.feed, account, position=args.position, as_of=args.as_of,
                                   recorded_at=args.recorded_at)
    if view is None:
        print(f"tradeledger replay: account {account!r} has no events up to then", file=sys.stderr)
        return 1
    emit(args, view, describe_portfolio(view))
    return 0


def describe_portfolio(view: AccountPortfolio) -> str:
    a = view.account
    marked = a.mark_time.isoformat() if a.mark_time else "no candle yet"
    lines = [
        f"account {a.account} ({a.quote_currency}), marked at {marked}",
        f"  cash {a.cash}  equity {a.equity}  gross PnL {a.realised_pnl}  fees {a.fees}  "
        f"net PnL {a.realised_pnl - a.fees}"
        + (f"  HALTED by {a.halted_rule}: {a.halted_reason}" if a.halted else ""),
        *(f"  position {p.symbol}: {p.quantity} @ {p.average_price} (last {p.last_price}), "
          f"unrealised {p.unrealised_pnl}" for p in view.positions),
        *(f"  open order {o.order_id}: {o.side.value} {o.quantity} {o.symbol}" for o in view.open_orders),
        f"  {len(view.trades)} closed trades: gross PnL {sum((t.pnl + t.fees for t in view.trades), Decimal(0))}"
        f"  fees {sum((t.fees for t in view.trades), Decimal(0))}  net PnL "
        f"{sum((t.pnl for t in view.trades), Decimal(0))}",
    ]
    return "\n".join(lines)
