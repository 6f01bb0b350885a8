"""The CLI's text for `explain` and the books (`--json` prints the structs; `--csv` the rows)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from tradeledger.adapters.services.books import JournalEntry, Posting, TrialBalance
from tradeledger.adapters.services.explain import Explanation


def amount(value: Decimal) -> str:
    """A Decimal without exponent notation (0E-12 is 0)."""
    return f"{value.normalize():f}" if value else "0"


def describe_explanation(e: Explanation) -> str:
    o = e.order
    lines = [f"order {o.order_id} (position {o.position}): {o.side.value} {amount(o.quantity)} {o.symbol}, "
             f"placed at {o.placed_at.isoformat()}: {o.reason}"]
    if e.candle is not None:
        c = e.candle
        lines.append(f"candle (position {c.position}): {c.symbol} {c.timeframe} {c.open_time.isoformat()}  "
                     f"O {c.open} H {c.high} L {c.low} C {c.close} V {c.volume}"
                     + (f"  flags {', '.join(c.quality_flags)}" if c.quality_flags else ""))
    if e.signal is not None:
        s = e.signal
        lines += [f"signal (position {s.position}): {s.prediction} at confidence {s.confidence:.4f}, "
                  f"{'actionable' if s.is_actionable else 'not actionable'}, data quality {s.data_quality:.3f}",
                  f"  model {s.model_name} {s.model_version}",
                  *(f"  member {m.name}: {m.prediction.value} ({m.confidence:.4f})" for m in s.members),
                  "  features: " + ", ".join(f"{name} {value:.6g}" for name, value in s.features.items())]
    else:
        lines.append(f"signal: not found ({o.signal_ref})")
    lines += ["risk checks at that close:" if e.checks else "risk checks: none recorded (placed before 0.3)",
              *(f"  {'pass' if c.passed else 'FAIL'}  {c.rule}: {amount(c.value)} (limit {amount(c.limit)})"
                for c in e.checks),
              "quantity:", *(f"  {line}" for line in e.sizing.formula)]
    lines += describe_fill(e)
    return "\n".join(lines)


def describe_fill(e: Explanation) -> list[str]:
    if e.fill is None:
        return [f"fill: none, cancelled: {e.order.cancelled}" if e.order.cancelled else "fill: not yet filled"]
    f = e.fill
    lines = [f"fill (position {f.position}): {amount(f.quantity)} at {amount(f.price)}, fee {amount(f.fee)}, "
             f"{'in the candle of' if f.basis and f.basis.limit_price else 'at the open of'} "
             f"{f.filled_at.isoformat()} (candle position {f.candle_position})",
             *(f"  {line}" for line in f.formula), "  journal:", *postings(f.journal)]
    if e.round_trip is not None:
        t = e.round_trip
        span = f"{t.entry_at.isoformat()} to {t.exit_at.isoformat()}" if t.exit_at else \
            f"{t.entry_at.isoformat()}, still open"
        lines.append(f"round trip {span} (fills at positions {', '.join(str(f.position) for f in t.fills)}): gross PnL "
                     f"{amount(t.gross_pnl)} - fees {amount(t.fees)} = net PnL {amount(t.net_pnl)}")
    return lines


def postings(lines: Sequence[Posting]) -> list[str]:
    width = max((len(p.account) for p in lines), default=0)
    return [f"    {p.account:<{width}}  debit {amount(p.debit):>18}  credit {amount(p.credit):>18}" for p in lines]


JOURNAL_COLUMNS = ("position", "at", "event", "order_id", "book", "account", "debit", "credit")
BALANCE_COLUMNS = ("book", "account", "debit", "credit", "balance")


def describe_journal(entries: Sequence[JournalEntry]) -> str:
    if not entries:
        return "no journal lines"
    width = max(len(e.account) for e in entries)
    return "\n".join(f"{e.position:>8}  {e.at.isoformat()}  {e.event:<11} {e.order_id or '-'!s:<36}  "
                     f"{e.account:<{width}}  debit {amount(e.debit):>18}  credit {amount(e.credit):>18}"
                     for e in entries)


def describe_trial_balance(tb: TrialBalance) -> str:
    cut = f"as of {tb.as_of.isoformat()} (position {tb.position})" if tb.as_of else f"at position {tb.position}"
    width = max((len(b.account) for b in tb.balances), default=0)
    return "\n".join([f"trial balance {cut}",
                      *(f"  {b.book}  {b.account:<{width}}  {amount(b.balance):>20}" for b in tb.balances),
                      f"  total {amount(tb.total)}: {'balanced' if tb.balanced else 'NOT BALANCED'}"])


def csv_text(rows: Sequence[msgspec.Struct], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(getattr(row, name)) for name in columns])
    return out.getvalue()


def cell(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
