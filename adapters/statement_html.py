"""The statement as one self-contained HTML document: inline CSS, inline SVG charts, no script, no URL.

Every recorded string is HTML-escaped. The key figures carry stable ids and a
`data-value` with the exact decimal (`<td id="cash" data-value="0.8006...">`),
so a test, or an auditor's tool, reads them from the DOM; tables carry
`data-rows`. Amounts are shown with every digit the ledger holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from html import escape
from typing import Any

from tradeledger.adapters.services.statement import CheckResult, Statement
from tradeledger.adapters.statement_svg import line_chart

CSS = """
body { font: 13px/1.45 system-ui, sans-serif; color: #111; margin: 24px auto; max-width: 1000px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 16px; border-bottom: 1px solid #bbb; margin-top: 28px; }
table { border-collapse: collapse; margin: 6px 0; } td, th { padding: 2px 10px 2px 4px; text-align: left; }
th { background: #eee; } tr:nth-child(even) td { background: #f7f7f7; }
td { vertical-align: top; overflow-wrap: anywhere; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td.time { white-space: nowrap; }
.ok { color: #155724; font-weight: 600; } .failed { color: #a00; font-weight: 600; }
.muted { color: #666; } .chart { width: 100%; height: auto; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def render(s: Statement) -> str:
    title = f"Statement of account {s.summary.account}"
    cut = "the whole log" if s.store.as_of is None else f"business time {text(s.store.as_of)}"
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">Drawn from the event log up to {escape(cut)} (position {s.store.cut_position}); '
        f"generated {escape(text(s.generated_at))}.</p>",
        section("Store", store(s)), section("Latest signed checkpoint", checkpoint(s.checkpoint)),
        section("Checks", checks(s.verify, s.reproduce)), section("Account summary", summary(s)),
        section("Equity and drawdown", charts(s)), section("Reconciliation of cash", cash(s)),
        section("Trial balance", trial_balance(s)),
        section("Daily PnL", table("daily-pnl", ["day (UTC)", "PnL (change in equity, net of fees)"],
                                   [(d.day, d.pnl) for d in s.daily_pnl])),
        section("Trades", table("trades", ["#", "symbol", "entry", "exit", "entry price", "exit price", "quantity",
                                           "fees (both legs)", "net PnL", "exit reason"],
                                [(t.seq, t.symbol, t.entry_time, t.exit_time, t.entry_price, t.exit_price,
                                  t.quantity, t.fees, t.pnl, t.exit_reason) for t in s.trades])),
        section("Halts and resumes", table("halts", ["position", "at", "action", "rule", "by", "reason", "metrics"],
                                           [(h.position, h.at, h.action, h.rule or "", h.by, h.reason,
                                             ", ".join(f"{k}={v}" for k, v in h.metrics.items()))
                                            for h in s.halts])),
        section("Rejected orders", table("rejections", ["position", "at", "symbol", "side", "rule", "reason"],
                                         [(r.position, r.at, r.symbol, r.side, r.rule, r.reason)
                                          for r in s.rejections])),
    ]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def section(heading: str, body: str) -> str:
    return f"<section><h2>{escape(heading)}</h2>\n{body}\n</section>"


def store(s: Statement) -> str:
    identity = s.store.store_id or "not recorded by this store"  # H1's store_identity table, when present
    return figures([("store-id", "store id", identity), ("database", "database", s.store.database),
                    ("head-position", "log head position", s.store.head_position),
                    ("cut-position", "statement cut position", s.store.cut_position)])


def checkpoint(recorded: dict[str, Any] | None) -> str:
    if recorded is None:
        return '<p id="checkpoint" data-value="none">no signed checkpoint</p>'
    return figures([(f"checkpoint-{key}", key, value) for key, value in recorded.items()], table_id="checkpoint")


def checks(verify: CheckResult, reproduce: CheckResult) -> str:
    rows = []
    for check_id, name, result in (("verify", "verify (hash chains, ledger invariants)", verify),
                                   ("reproduce", "reproduce (every decision re-run)", reproduce)):
        status = "OK" if result.ok else "FAILED"
        findings = "".join(f"<br>{escape(f)}" for f in result.findings)
        rows.append(f'<tr><th>{escape(name)}</th><td id="{check_id}" data-value="{status.lower()}" '
                    f'class="{"ok" if result.ok else "failed"}">{status}</td>'
                    f"<td>{escape(result.summary)}{findings}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def summary(s: Statement) -> str:
    m, q = s.summary, s.summary.quote_currency
    return figures([
        ("account", "account", m.account), ("currency", "currency", q),
        ("initial-balance", f"initial balance ({q})", m.initial_balance), ("cash", f"cash ({q})", m.cash),
        ("equity", f"equity ({q})", m.equity), ("return-percent", "return %", m.return_percent),
        ("max-drawdown-percent", "max drawdown %", m.max_drawdown_percent),
        ("gross-pnl", f"gross PnL, before fees ({q})", m.gross_pnl), ("fees", f"fees ({q})", m.fees),
        ("net-pnl", f"net PnL ({q})", m.net_pnl), ("trade-count", "closed trades", m.trades),
        ("open-positions", "open positions", m.open_positions),
    ])


def charts(s: Statement) -> str:
    q = s.summary.quote_currency
    equity = line_chart([(p.time, p.equity) for p in s.curve], title="Equity", unit=q, chart_id="equity-chart")
    drawdown = line_chart([(p.time, -p.drawdown_percent) for p in s.curve], title="Drawdown", unit="%",
                          chart_id="drawdown-chart", colour="#a00", fill=True)
    return f"{equity}\n{drawdown}"


def cash(s: Statement) -> str:
    c, q = s.cash, s.summary.quote_currency
    verdict = (f'<p id="cash-reconciles" data-value="{str(c.ok).lower()}" class="{"ok" if c.ok else "failed"}">'
               f'{"the cash reconciles" if c.ok else "the cash does NOT reconcile"}: '
               f"{amount(c.initial_balance)} + {amount(c.sells)} - {amount(c.buys)} - {amount(c.fees)} "
               f"= {amount(c.computed)} {escape(q)}</p>")
    return figures([("cash-initial", "initial balance", c.initial_balance), ("cash-sells", "+ sells", c.sells),
                    ("cash-buys", "- buys", c.buys), ("cash-fees", "- fees", c.fees),
                    ("cash-computed", "= computed cash", c.computed), ("cash-recorded", "recorded cash", c.cash)]
                   ) + verdict


def trial_balance(s: Statement) -> str:
    tb = s.trial_balance
    rows = [(b.account, b.debit, b.credit, b.balance) for b in tb.balances]
    verdict = (f'<p id="trial-balance-total" data-value="{text(tb.total)}" class="{"ok" if tb.balanced else "failed"}">'
               f"total {amount(tb.total)}: {'balances' if tb.balanced else 'does NOT balance'}</p>")
    return table("trial-balance", ["ledger account", "debits", "credits", "balance (debit - credit)"], rows) + verdict


def figures(items: Iterable[tuple[str, str, Any]], table_id: str | None = None) -> str:
    """A two-column table of named figures; each value cell has the figure's id and its exact value."""
    rows = "".join(f'<tr><th>{escape(label)}</th>{cell(value, figure_id)}</tr>' for figure_id, label, value in items)
    return f"<table{attribute('id', table_id)}>{rows}</table>"


def table(table_id: str, headings: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return f'<p id="{table_id}" data-rows="0" class="muted">none</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}" data-rows="{len(rows)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def cell(value: Any, figure_id: str | None = None) -> str:
    """A table cell; a figure's cell also has its id and its exact value as `data-value`."""
    numeric = isinstance(value, (Decimal, int)) and not isinstance(value, bool)
    kind = "num" if numeric else "time" if isinstance(value, datetime) else None
    shown = escape(text(value))
    attributes = attribute("id", figure_id) + (f' data-value="{shown}"' if figure_id else "")
    return f"<td{attributes}{attribute('class', kind)}>{shown}</td>"


def attribute(name: str, value: str | None) -> str:
    return "" if value is None else f' {name}="{escape(value)}"'


def amount(value: Decimal) -> str:
    return escape(text(value))


def text(value: Any) -> str:
    """Exact and unambiguous: decimals in full (no exponent), times in UTC ISO-8601, enums by value."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)
