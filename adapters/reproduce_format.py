"""Text for `tradeledger reproduce`: the reproduction, the input check and the what-if, each one screen."""

from __future__ import annotations

from decimal import Decimal

from tradeledger.adapters.services.reproduce import Divergence, ReproduceReport
from tradeledger.adapters.services.reproduce_data import DataCheck
from tradeledger.adapters.services.whatif import Outcome, WhatIfReport

SHOWN = 10  # divergences listed by --all (all are counted)
FIELDS = 6  # differing fields listed per divergence


def describe_reproduce(report: ReproduceReport) -> str:
    lines = [line for check in report.data_files for line in describe_data(check)]
    if report.divergence is None:
        return "\n".join([f"OK: {report.candles} candles replayed, {report.decisions} decisions reproduced exactly",
                          *lines])
    if not report.every:
        return "\n".join([f"DIVERGED after {report.candles} candles: {report.divergence}",
                          *fields(report.divergence), *lines])
    total = sum(report.counts.values())
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.counts.items(), key=lambda kv: -kv[1]))
    listed = [line for d in report.divergences[:SHOWN] for line in (f"  {d}", *fields(d, indent="    "))]
    more = [f"  ... and {total - SHOWN} more (--json lists the first {len(report.divergences)})"] \
        if total > SHOWN else []
    return "\n".join([f"DIVERGED: {total} divergence(s) over {report.candles} candles ({counts}); "
                      f"{report.decisions} decisions reproduced exactly", *listed, *more, *lines])


def fields(divergence: Divergence, indent: str = "  ") -> list[str]:
    shown = [f"{indent}{d.field}: recorded {d.recorded!r}, reproduced {d.reproduced!r}"
             for d in divergence.fields[:FIELDS]]
    return shown + ([f"{indent}... and {len(divergence.fields) - FIELDS} more fields"]
                    if len(divergence.fields) > FIELDS else [])


def describe_data(data: DataCheck) -> list[str]:
    if not data.recorded_sha256:
        digest = f"SHA-256 {data.sha256} (no run recorded one: recorded before 0.3)"
    else:
        digest = f"SHA-256 {data.sha256}" + (", as recorded" if data.sha256 in data.recorded_sha256 else "")
    if not data.ok:
        return [f"input {data.file}: DIFFERS ({digest})", *(f"  {finding}" for finding in data.findings)]
    part = f"the first {data.recorded_candles} of its {data.file_candles}" \
        if data.recorded_candles < data.file_candles else f"its {data.file_candles}"
    return [f"input {data.file}: OK, {digest}; the recorded {data.market} candles are {part} candles"]


ROWS = (("return %", "return_percent"), ("max drawdown %", "max_drawdown_percent"), ("trades", "trades"),
        ("gross PnL", "gross_pnl"), ("fees", "fees"), ("net PnL", "net_pnl"), ("final equity", "final_equity"))


def describe_what_if(report: WhatIfReport) -> str:
    settings = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in report.settings.items())
    lines = [f"what-if over {report.candles:,} recorded candles: {settings} (all else as recorded)",
             f"{'':<16}{'recorded':>22}{'what-if':>22}"]
    lines += [f"{label:<16}{shown(report.recorded, name):>22}{shown(report.what_if, name):>22}"
              for label, name in ROWS]
    lines.append(f"(money in {report.quote_currency}; gross PnL: closed positions before fees; net = gross - fees)")
    change = report.changed
    if change is None:
        lines.append("first changed decision: none, every decision is the recorded one")
    else:
        where = f"log position {change.position}" if change.position is not None else "not in the recorded log"
        lines += [f"first changed decision at {change.at.isoformat()} (recorded one: {where})",
                  f"  recorded: {change.recorded}", f"  what-if:  {change.what_if}",
                  *(f"    {d.field}: recorded {d.recorded!r}, what-if {d.reproduced!r}"
                    for d in change.fields[:FIELDS])]
    lines += [f"skipped operator command: {skip}" for skip in report.skipped[:3]]
    return "\n".join(lines)


def shown(outcome: Outcome, name: str) -> str:
    value = getattr(outcome, name)
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)
