"""Facts `verify` recomputes from an event itself: a run's decision digest and a fill's journal amounts.

A hash chain proves an event was not changed after it was appended; these
checks prove it was consistent when it was: whoever rewrites a fill's price, or
a run's recorded decision settings, and recomputes the chain, must also get
every derived figure of the same event right.

- `AgentRun.Started`: `decision_digest` is `decisions.digest_of(decision_config)`
  (runs before 0.3 recorded no digest; `config_digest` covers every public
  setting, most of which the event does not hold, so it cannot be recomputed).
- `Account.OrderFilled`: `Account.fill_order` books value = money(price ×
  quantity) and fee = money(fee) (money: rounded to 1e-12, half-even) as
  buy:  position +value, fees +fee, cash -(value + fee)
  sell: cash +(value - fee), fees +fee, position -basis, trading income -(value - basis)
  so a buy's position line is the value and a sell's position and income lines
  sum to -value, whatever the basis; `realised_pnl` is value - basis (0 for a
  buy); with a recorded `FillBasis`, fee = money(price × quantity × fee_rate)
  (`domain.broker`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradeledger.domain.account import FEES, TRADING_INCOME, Account, cash_account, money, position_account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.decisions import digest_of
from tradeledger.domain.values import Side

ZERO = Decimal(0)


class FactsChecker:
    """What is wrong with one decoded event's own figures (messages; empty when they hold)."""

    def __init__(self) -> None:
        self.currencies: dict[Any, str] = {}  # account stream -> its cash currency

    def check(self, event: Any) -> list[str]:
        if isinstance(event, Account.Opened):
            self.currencies[event.originator_id] = event.quote_currency
        elif isinstance(event, AgentRun.Started):
            return run_facts(event)
        elif isinstance(event, Account.OrderFilled) and event.originator_id in self.currencies:
            return fill_facts(event, self.currencies[event.originator_id])
        return []


def run_facts(event: AgentRun.Started) -> list[str]:
    if not event.decision_digest or digest_of(event.decision_config) == event.decision_digest:
        return []
    return [f"decision_digest {event.decision_digest} is not the SHA-256 of the recorded decision_config "
            f"({digest_of(event.decision_config)}): the settings a replay uses are not the ones the run recorded"]


def fill_facts(fill: Account.OrderFilled, currency: str) -> list[str]:
    lines: dict[str, Decimal] = {}
    for line in fill.journal:
        lines[line.account] = lines.get(line.account, ZERO) + line.amount
    value, fee = money(fill.price * fill.quantity), money(fill.fee)
    cash, held = cash_account(currency), position_account(fill.symbol)
    fees, paid, position, income = (lines.get(name, ZERO) for name in (FEES, cash, held, TRADING_INCOME))
    checks = [(f"journal line {FEES}", fees, fee)]
    if fill.side is Side.BUY:
        allowed = {FEES, cash, held}
        checks += [(f"journal line {held}", position, value), (f"journal line {cash}", paid, -(value + fee)),
                   ("realised_pnl", fill.realised_pnl, ZERO)]
    else:
        allowed = {FEES, cash, held, TRADING_INCOME}
        checks += [(f"journal line {cash}", paid, value - fee),
                   (f"journal lines {held} + {TRADING_INCOME}", position + income, -value),
                   ("realised_pnl", fill.realised_pnl, -income)]
    where = f"fill of order {fill.order_id} ({fill.side.value} {fill.quantity} {fill.symbol} at {fill.price})"
    found = [f"{where}: {what} is {actual}, price × quantity = {value} and fee {fee} give {want}"
             for what, actual, want in checks if actual != want]
    found += [f"{where}: journal line {name} has no place in a {fill.side.value} fill"
              for name in sorted(lines.keys() - allowed)]
    if fee != fill.fee:
        found.append(f"{where}: fee {fill.fee} is not rounded to the ledger's 1e-12")
    if fill.basis is not None and money(fill.price * fill.quantity * fill.basis.fee_rate) != fee:
        found.append(f"{where}: fee {fill.fee} is not price × quantity × the recorded fee_rate "
                     f"{fill.basis.fee_rate} ({money(fill.price * fill.quantity * fill.basis.fee_rate)})")
    return found
