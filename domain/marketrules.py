"""A market's trading rules as an exchange states them, applied to paper orders as the exchange would.

- `amount_step`: order quantities are rounded down to a multiple of it;
- `price_step`: fill prices are rounded to a multiple of it, against the trader
  (a buy up, a sell down), so the paper fill is never better than the exchange's;
- `min_amount`, `min_notional`: an order below either (after rounding; the
  notional at the close it is placed on) is rejected with that rule, as the
  exchange would refuse it.
Every rule is optional; unset (None) means the exchange imposes none, which is
how every run recorded before these rules existed decided.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import msgspec

from tradeledger.domain.values import Side

AMOUNT_STEP = "amount_step"
MIN_AMOUNT = "min_amount"
MIN_NOTIONAL = "min_notional"


class OrderRules(msgspec.Struct, frozen=True, kw_only=True):
    amount_step: Decimal | None = None
    price_step: Decimal | None = None
    min_amount: Decimal | None = None
    min_notional: Decimal | None = None

    def amount(self, quantity: Decimal) -> Decimal:
        """`quantity` rounded down to the amount step."""
        return _to_step(quantity, self.amount_step, ROUND_FLOOR)

    def price(self, price: Decimal, side: Side) -> Decimal:
        """`price` rounded to the price step against the trader: a buy pays up, a sell receives less."""
        rounded = _to_step(price, self.price_step, ROUND_CEILING if side is Side.BUY else ROUND_FLOOR)
        return rounded if rounded > 0 else self.price_step or price  # a sell never rounds to a price of zero

    def refusal(self, symbol: str, quantity: Decimal, price: Decimal) -> tuple[str, str] | None:
        """(rule, reason) when an order of `quantity` (already rounded) at about `price` is refused."""
        if quantity <= 0 and self.amount_step is not None:
            return AMOUNT_STEP, f"the quantity rounds down to 0 {symbol} at the amount step {self.amount_step}"
        if self.min_amount is not None and quantity < self.min_amount:
            return MIN_AMOUNT, f"quantity {quantity} is below the market's minimum amount {self.min_amount}"
        notional = quantity * price
        if self.min_notional is not None and notional < self.min_notional:
            return MIN_NOTIONAL, (f"notional {notional.normalize()} at {price} is below the market's "
                                  f"minimum notional {self.min_notional}")
        return None


NO_RULES = OrderRules()
RulesFor = Callable[[str], OrderRules]  # symbol -> its rules


def no_rules(_symbol: str) -> OrderRules:
    return NO_RULES


def rules_by_symbol(rules: Mapping[str, OrderRules], default: OrderRules = NO_RULES) -> RulesFor:
    return lambda symbol: rules.get(symbol, default)


def _to_step(value: Decimal, step: Decimal | None, rounding: str) -> Decimal:
    if step is None:
        return value
    return (value / step).to_integral_value(rounding=rounding) * step
