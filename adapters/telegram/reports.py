"""The read commands a Freqtrade user reaches for (/profit, /performance, /daily, /weekly, /monthly, /count),
as plain text from the read models' views: closed round trips and the daily PnL the portfolio projection keeps.

Weeks are ISO weeks (Monday first) and months calendar months, both summed from the UTC days of the daily
PnL, so the three period commands always add up to the same total.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from tradeledger.adapters.services.views import DailyPnlView, PortfolioView, TradeView
from tradeledger.projections.alerts import shown, signed

PERIODS_SHOWN = {"day": 7, "week": 4, "month": 6}  # as Freqtrade's defaults: /daily 7, /weekly 8, /monthly 6


def profit(view: PortfolioView, trades: list[TradeView]) -> str:
    q = view.quote_currency
    lines = [f"{view.account}: {len(trades)} closed trades" + (f", {win_rate(trades)}" if trades else "")]
    if trades:
        best = max(trades, key=lambda t: t.net_pnl)
        worst = min(trades, key=lambda t: t.net_pnl)
        lines += [f"closed net PnL {signed(sum((t.net_pnl for t in trades), Decimal(0)))} {q} "
                  f"(gross {signed(sum((t.gross_pnl for t in trades), Decimal(0)))} - fees "
                  f"{shown(sum((t.fees for t in trades), Decimal(0)))})",
                  f"best trade #{best.seq} {best.symbol} {signed(best.net_pnl)}, "
                  f"worst #{worst.seq} {worst.symbol} {signed(worst.net_pnl)}",
                  f"first entry {min(t.entry_time for t in trades):%Y-%m-%d %H:%M}, "
                  f"last exit {max(t.exit_time for t in trades):%Y-%m-%d %H:%M}"]
    return "\n".join([*lines, f"unrealised PnL {signed(view.unrealised_pnl)} {q}",
                      f"equity {shown(view.equity)} {q}, return {view.return_percent:+.2f}%"])


def win_rate(trades: list[TradeView]) -> str:
    wins = sum(1 for t in trades if t.net_pnl > 0)
    return f"{wins} won, {len(trades) - wins} lost ({wins / len(trades):.0%} won)"


def performance(trades: list[TradeView]) -> str:
    """Per pair, best first: net PnL, trade count and win rate."""
    if not trades:
        return "no closed trades yet"
    pairs: dict[str, list[TradeView]] = {}
    for trade in trades:
        pairs.setdefault(trade.symbol, []).append(trade)
    totals = sorted(((sum((t.net_pnl for t in ts), Decimal(0)), symbol, ts) for symbol, ts in pairs.items()),
                    key=lambda item: item[0], reverse=True)
    return "\n".join(f"{symbol}: net PnL {signed(total)} over {len(ts)} trades, {win_rate(ts)}"
                     for total, symbol, ts in totals)


PERIODS: dict[str, tuple[Callable[[date], date], Callable[[date], str]]] = {  # its first day, its label
    "day": (lambda d: d, lambda d: d.isoformat()),
    "week": (lambda d: date.fromordinal(d.toordinal() - d.weekday()), lambda d: f"week of {d.isoformat()}"),
    "month": (lambda d: d.replace(day=1), lambda d: f"{d:%Y-%m}"),
}


def periods(days: list[DailyPnlView], period: str) -> str:
    """The last periods' PnL (the portfolio's daily PnL summed by week or month), oldest first."""
    if not days:
        return "no daily PnL yet"
    first_day, label = PERIODS[period]
    sums: dict[date, Decimal] = {}
    for day in days:
        start = first_day(day.day)
        sums[start] = sums.get(start, Decimal(0)) + day.pnl
    return "\n".join(f"{label(start)}: {signed(sums[start])}" for start in sorted(sums)[-PERIODS_SHOWN[period]:])


def count(view: PortfolioView, open_positions: int, max_open: int | None) -> str:
    limit = f" of at most {max_open}" if max_open is not None else ""
    return (f"open positions {open_positions}{limit}, open orders {view.open_orders}, "
            f"closed trades {view.trades_closed}")
