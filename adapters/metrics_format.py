"""The metrics as readable tables (rich), for `backtest` and `report`; no colour codes unless stdout is a TTY."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from rich import box
from rich.console import Console
from rich.table import Table

from tradeledger.adapters.services.metrics import Metrics, TradeStats

PLAIN_WIDTH = 120  # columns when stdout is not a terminal
TABLE_PLACES = 8  # money in the tables (the summary and --json keep every digit)
MISSING = "-"


def tables(metrics: Metrics) -> str:
    """The summary, then the trades by pair, by exit reason and (with a breakdown) by period."""
    tty = sys.stdout.isatty()
    out = io.StringIO()
    console = Console(file=out, force_terminal=tty, no_color=not tty, width=None if tty else PLAIN_WIDTH,
                      highlight=False)
    q = metrics.quote_currency
    shown = [summary(metrics), trade_table(f"trades by pair ({q})", "pair", metrics.pairs, market=True),
             trade_table(f"trades by exit reason ({q})", "exit reason", metrics.exit_reasons)]
    if metrics.breakdown is not None:
        shown.append(trade_table(f"trades by {metrics.breakdown} of exit ({q})", metrics.breakdown, metrics.periods))
    for table in shown:
        console.print(table)
        console.print()
    return out.getvalue()


def summary(m: Metrics) -> Table:
    q, dd = m.quote_currency, m.max_drawdown
    table = Table("metric", "value", title="summary", box=box.SIMPLE, title_justify="left")
    rows = [
        ("span", f"{when(m.start)} .. {when(m.end)} ({m.candles:,} candles)"),
        ("equity", f"{money(m.initial_equity)} -> {money(m.final_equity)} {q} (peak {money(m.equity_peak)})"),
        ("return", pct(m.return_percent)), ("CAGR", pct(m.cagr_percent)),
        ("buy and hold", f"{pct(m.buy_and_hold_percent)} (the same pairs, equal weights)"),
        ("max drawdown", f"{pct(dd.percent)} ({when(dd.peak_at)} .. {when(dd.trough_at)}, "
                         f"recovered {when(dd.recovered_at)})"),
        ("annualised", f"return {pct(m.annualised_return_percent)}, volatility {pct(m.volatility_percent)} "
                       f"({m.annualisation})"),
        ("Sharpe / Sortino / Calmar", " / ".join(ratio(r) for r in (m.sharpe, m.sortino, m.calmar))),
        ("exposure", pct(m.exposure_percent)),
        ("trades", f"{m.trades} ({m.wins} won, {m.losses} lost; win rate {pct(m.win_rate_percent)})"),
        ("profit factor / SQN", f"{ratio(m.profit_factor)} / {ratio(m.sqn)}"),
        ("expectancy", f"{pct(m.expectancy_percent)} a trade (geometric mean {pct(m.avg_trade_percent)})"),
        ("best / worst trade", f"{pct(m.best_trade_percent)} / {pct(m.worst_trade_percent)}"),
        ("best / worst day", f"{pct(m.best_day_percent)} / {pct(m.worst_day_percent)}"),
        ("trade duration", f"mean {duration(m.avg_duration_seconds)}, median {duration(m.median_duration_seconds)}, "
                           f"max {duration(m.max_duration_seconds)}"),
        ("consecutive wins / losses", f"{m.max_consecutive_wins} / {m.max_consecutive_losses}"),
        ("gross / fees / net", f"{money(m.gross_pnl)} / {money(m.fees)} / {money(m.net_pnl)} {q}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def trade_table(title: str, key: str, rows: Sequence[TradeStats], *, market: bool = False) -> Table:
    headers = [key, "trades", "won", "lost", "win rate", "net PnL", "fees", "return", "PF", "expectancy",
               "duration", *(["market"] if market else [])]
    table = Table(*headers, title=title, caption="PF: profit factor; expectancy: mean trade return; duration: mean"
                  + ("; market: last close / first close" if market else ""), box=box.SIMPLE, title_justify="left",
                  caption_justify="left")
    for c in table.columns[1:]:
        c.justify = "right"
    for r in rows:
        table.add_row(r.key, str(r.trades), str(r.wins), str(r.losses), pct(r.win_rate_percent), places(r.net_pnl),
                      places(r.fees), pct(r.return_percent), ratio(r.profit_factor), pct(r.expectancy_percent),
                      duration(r.avg_duration_seconds), *([pct(r.market_change_percent)] if market else []))
    return table


def pct(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}%"


def ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def money(value: Decimal) -> str:
    return f"{value.normalize():f}" if value else "0"


def places(value: Decimal) -> str:
    return f"{value:.{TABLE_PLACES}f}"


def when(at: datetime | None) -> str:
    return MISSING if at is None else at.strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    return " ".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"
