"""The paper broker: a simulated exchange that fills market orders at the next candle's open.

Buys pay `slippage_bps` above the open, sells receive that much below; the fee
is `fee_rate` of the traded value. A buy that the cash no longer covers at the
fill price is filled for the largest affordable quantity, or not at all.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from tradeledger.domain.account import Order, money
from tradeledger.domain.trader import QUANTITY_QUANTUM, Fill
from tradeledger.domain.values import Candle, Side

PRICE_QUANTUM = Decimal("1e-10")


class PaperBroker:
    def __init__(self, *, fee_rate: Decimal, slippage_bps: Decimal) -> None:
        self.fee_rate = fee_rate
        self.slippage = slippage_bps / 10_000

    def fill(self, order: Order, candle: Candle, cash: Decimal) -> Fill | None:
        direction = 1 if order.side is Side.BUY else -1
        price = (candle.open * (1 + direction * self.slippage)).quantize(PRICE_QUANTUM)
        quantity = order.quantity
        if order.side is Side.BUY:
            quantity = min(quantity, self.affordable(cash, price))
            if quantity <= 0:
                return None
        return Fill(price=price, quantity=quantity, fee=money(price * quantity * self.fee_rate))

    def affordable(self, cash: Decimal, price: Decimal) -> Decimal:
        quantity = (cash / (price * (1 + self.fee_rate))).quantize(QUANTITY_QUANTUM, rounding=ROUND_DOWN)
        # Rounding the fee to the money quantum can still tip the total over the cash by a hair.
        while quantity > 0 and money(price * quantity) + money(price * quantity * self.fee_rate) > cash:
            quantity -= QUANTITY_QUANTUM
        return quantity
