"""The paper broker: a simulated exchange that fills market orders at the next candle's open, limit and
stop orders where a candle reached their level (`domain.orders.touch_price`).

Buys pay `slippage_bps` above the open, sells receive that much below; the fee
is `fee_rate` of the traded value. A buy that the cash no longer covers at the
fill price is filled for the largest affordable quantity, or not at all. With
a market's rules (`domain.marketrules`) the fill price is rounded to its price
step against the trader and a reduced buy to its amount step, and a buy the cash
covers only below its minimums is not filled.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from tradeledger.domain.account import money
from tradeledger.domain.marketrules import RulesFor, no_rules
from tradeledger.domain.orders import PRICE_QUANTUM, QUANTITY_QUANTUM, FillBasis, Order, touch_price
from tradeledger.domain.trader import Fill
from tradeledger.domain.values import Candle, Side


class PaperBroker:
    def __init__(self, *, fee_rate: Decimal, slippage_bps: Decimal, rules: RulesFor = no_rules) -> None:
        self.fee_rate = fee_rate
        self.rules = rules  # the markets' steps and minimums (domain.marketrules)
        self.slippage_bps = slippage_bps
        self.slippage = slippage_bps / 10_000

    def fill(self, order: Order, candle: Candle, cash: Decimal) -> Fill | None:
        """None when the cash does not cover the order; a limit or stop order is filled only on a candle
        that reached its level (`domain.orders.touch_price`: the trader asks before)."""
        rules = self.rules(order.symbol)
        if order.limit_price is None:
            direction = 1 if order.side is Side.BUY else -1
            price = rules.price((candle.open * (1 + direction * self.slippage)).quantize(PRICE_QUANTUM), order.side)
        else:
            touched = touch_price(order.order_type, order.side, order.limit_price, candle)
            assert touched is not None, "a limit or stop order is filled on a candle that reached it"
            price = touched
        quantity = order.quantity
        if order.side is Side.BUY:
            quantity = min(quantity, rules.amount(self.affordable(cash, price)))
            # Less than the exchange's minimum is what the cash covers: the exchange would refuse that order.
            if quantity <= 0 or rules.refusal(order.symbol, quantity, price) is not None:
                return None
        return Fill(price=price, quantity=quantity, fee=money(price * quantity * self.fee_rate),
                    basis=FillBasis(open=candle.open, slippage_bps=self.slippage_bps, fee_rate=self.fee_rate,
                                    price_step=rules.price_step, order_type=order.order_type,
                                    limit_price=order.limit_price))

    def affordable(self, cash: Decimal, price: Decimal) -> Decimal:
        quantity = (cash / (price * (1 + self.fee_rate))).quantize(QUANTITY_QUANTUM, rounding=ROUND_DOWN)
        # Rounding the fee to the money quantum can still tip the total over the cash by a hair.
        while quantity > 0 and money(price * quantity) + money(price * quantity * self.fee_rate) > cash:
            quantity -= QUANTITY_QUANTUM
        return quantity
