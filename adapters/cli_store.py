"""The store itself: `db upgrade` it, page through its `events`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import msgspec

from tradeledger.adapters import eventlog
from tradeledger.adapters.cliargs import LIMITS, LOG_POSITIONS, command, emit, integer, option, redacted_url

if TYPE_CHECKING:
    from tradeledger.adapters.composition import Composition


@command("db upgrade")
def db_upgrade(args: argparse.Namespace, container: Composition) -> int:
    emit(args, {"upgraded": True, "database": redacted_url(container.settings)},
         f"database is at head: {redacted_url(container.settings)}")
    return 0


@command(
    "events",
    option("--after", type=integer(*LOG_POSITIONS), default=0, metavar="N", help="only events after log position N"),
    option("--limit", type=integer(*LIMITS), default=100, metavar="N", help="at most N events (default 100)"),
    option("--type", action="append", metavar="T", help="only events of type T (repeatable), e.g. OrderFilled"),
    reads="log",
)
def events(args: argparse.Namespace, container: Composition) -> int:
    try:
        records = eventlog.audit_page(container.feed, after=args.after, limit=args.limit, types=args.type)
    except ValueError as error:
        print(f"tradeledger events: {error}", file=sys.stderr)
        return 2
    # Business time first, then the wall clock it was recorded at.
    lines = [f"{r.position:>8}  {r.at.isoformat()}  (recorded {r.recorded_at.isoformat()})  {r.type:<18} "
             f"{r.stream}@{r.version}  {msgspec.json.encode(r.data).decode()}" for r in records]
    emit(args, records, "\n".join(lines) or "no events")
    return 0
