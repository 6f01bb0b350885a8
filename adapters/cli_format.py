"""The CLI's text for reports the services return (`--json` prints the structs themselves)."""

from __future__ import annotations

from decimal import Decimal

from tradeledger.projections.health_rule import HealthReport, stopped_text
from tradeledger.projections.portfolio_view import AccountPortfolio


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


def describe_health(report: HealthReport) -> str:
    agent = report.agent
    lines = [
        f"{report.status.upper()}" + (f": {'; '.join(report.reasons)}" if report.reasons else ""),
        f"  event store: {'reachable, head ' + str(report.head) if report.store_reachable else 'UNREACHABLE'}",
        f"  agent: {agent.status}" + (f" (pid {agent.pid} on {agent.host}, last heartbeat "
                                      f"{agent.heartbeat_age:.0f}s ago)" if agent.heartbeat_age is not None else ""),
        *(f"  projection {p.name}: position {p.position}, lag {p.lag}"
          + (f", {stopped_text(p.error, p.error_position, p.error_at)}" if p.error else "")
          for p in report.projections),
        f"  open connections: {report.open_connections}",
    ]
    return "\n".join(lines)
