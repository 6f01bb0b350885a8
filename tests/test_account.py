"""The Account ledger driven by random command sequences: each command succeeds or is refused exactly as a
simple model predicts, and the invariants hold after every step."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import msgspec

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tradeledger.adapters.database import upgrade
from tradeledger.adapters.eventstore import open_store
from tradeledger.domain import errors
from tradeledger.domain.account import Account, money
from tradeledger.domain.values import Side

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SYMBOLS = ("ETH/BTC", "LTC/BTC")
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=6)
quantities = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("50"), places=8)
fee_rates = st.sampled_from([Decimal(0), Decimal("0.001"), Decimal("0.0075")])
halt_rules = st.sampled_from(["manual", "daily_loss", "drawdown"])
T = TypeVar("T")


class Model(msgspec.Struct, kw_only=True):
    """What the account must hold, predicted from the commands alone."""

    cash: Decimal
    positions: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (quantity, cost)
    orders: dict[UUID, tuple[str, Side, Decimal]] = {}  # open orders: symbol, side, quantity
    closed: list[UUID] = []  # filled or cancelled
    halted_by: str | None = None

    def held(self, symbol: str) -> Decimal:
        return self.positions.get(symbol, (Decimal(0), Decimal(0)))[0]

    def sell_room(self, symbol: str) -> Decimal:
        selling = sum((q for s, side, q in self.orders.values() if s == symbol and side is Side.SELL), Decimal(0))
        return self.held(symbol) - selling

    def placing(self, symbol: str, side: Side, quantity: Decimal) -> type[errors.DomainError] | None:
        if quantity <= 0:
            return errors.InvalidValue
        if side is Side.BUY and self.halted_by is not None:
            return errors.TradingIsHalted
        if side is Side.SELL and quantity > self.sell_room(symbol):
            return errors.InsufficientPosition
        return None

    def filling(self, order_id: UUID, price: Decimal, quantity: Decimal, fee: Decimal) -> type[errors.DomainError] | None:
        if order_id not in self.orders:
            return errors.UnknownOrder
        symbol, side, ordered = self.orders[order_id]
        if not 0 < quantity <= ordered:
            return errors.InvalidValue
        if side is Side.BUY and money(price * quantity) + money(fee) > self.cash:
            return errors.InsufficientFunds
        if side is Side.SELL and quantity > self.held(symbol):
            return errors.InsufficientPosition
        return None

    def fill(self, order_id: UUID, price: Decimal, quantity: Decimal, fee: Decimal) -> None:
        symbol, side, _ = self.orders.pop(order_id)  # a partial fill closes the order too
        self.closed.append(order_id)
        value, fee = money(price * quantity), money(fee)
        held, cost = self.positions.pop(symbol, (Decimal(0), Decimal(0)))
        if side is Side.BUY:
            self.cash -= value + fee
            held, cost = held + quantity, cost + value
        else:
            basis = cost if quantity == held else money(cost * quantity / held)
            self.cash += value - fee
            held, cost = held - quantity, cost - basis
        if held:
            self.positions[symbol] = (held, cost)


class AccountMachine(RuleBasedStateMachine):
    """Commands in any order. A simple model predicts which must succeed and which must be refused (and
    with which error); the account must do exactly that, and afterwards hold what the model holds."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self.folder.name) / 'ledger.sqlite'}"
        upgrade(url)
        self.store = open_store(url)
        self.account = Account.open("paper", "BTC", Decimal("10"), at=START)
        self.store.save(self.account)
        self.model = Model(cash=Decimal("10"))
        self.clock = START

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=5)
        return self.clock

    def expect(self, refusal: type[errors.DomainError] | None, command: Callable[[], T]) -> T | None:
        """Run `command`: it must succeed with one event when `refusal` is None, else raise exactly it."""
        version = self.account.version
        if refusal is None:
            result = command()
            assert self.account.version == version + 1
        else:
            with pytest.raises(errors.DomainError) as caught:
                command()
            assert type(caught.value) is refusal, f"expected {refusal.__name__}, got {caught.value!r}"
            assert self.account.version == version, "a refused command must not change the account"
            result = None
        self.store.save(self.account)
        return result

    def place(self, symbol: str, side: Side, quantity: Decimal) -> UUID | None:
        refusal = self.model.placing(symbol, side, quantity)
        order_id = self.expect(refusal, lambda: self.account.place_order(symbol, side, quantity, at=self.tick()))
        if order_id is not None:
            self.model.orders[order_id] = (symbol, side, quantity)
        return order_id

    def fill(self, order_id: UUID, price: Decimal, quantity: Decimal, fee: Decimal) -> None:
        refusal = self.model.filling(order_id, price, quantity, fee)
        self.expect(refusal, lambda: self.account.fill_order(order_id, price=price, quantity=quantity, fee=fee,
                                                             at=self.tick()))
        if refusal is None:
            self.model.fill(order_id, price, quantity, fee)

    @rule(symbol=st.sampled_from(SYMBOLS), quantity=quantities, price=prices, fee_rate=fee_rates)
    def buy_and_fill(self, symbol: str, quantity: Decimal, price: Decimal, fee_rate: Decimal) -> None:
        order_id = self.place(symbol, Side.BUY, quantity)
        if order_id is not None:
            self.fill(order_id, price, quantity, price * quantity * fee_rate)

    @rule(symbol=st.sampled_from(SYMBOLS), quantity=quantities)
    def place_buy(self, symbol: str, quantity: Decimal) -> None:
        self.place(symbol, Side.BUY, quantity)

    @rule(symbol=st.sampled_from(SYMBOLS), quantity=quantities)
    def place_any_sell(self, symbol: str, quantity: Decimal) -> None:
        self.place(symbol, Side.SELL, quantity)

    @precondition(lambda self: any(self.model.sell_room(symbol) > 0 for symbol in SYMBOLS))
    @rule(data=st.data(), part=st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.1")]), price=prices,
          fill=st.booleans())
    def sell_what_is_free_to_sell(self, data: st.DataObject, part: Decimal, price: Decimal, fill: bool) -> None:
        symbol = data.draw(st.sampled_from([s for s in SYMBOLS if self.model.sell_room(s) > 0]))
        room = self.model.sell_room(symbol)
        quantity = (room * part).quantize(Decimal("1e-8"), rounding=ROUND_DOWN) or room
        order_id = self.place(symbol, Side.SELL, quantity)
        if fill and order_id is not None:
            self.fill(order_id, price, quantity, Decimal(0))

    @rule(symbol=st.sampled_from(SYMBOLS), quantity=st.sampled_from([Decimal(0), Decimal("-1")]))
    def place_a_non_positive_quantity(self, symbol: str, quantity: Decimal) -> None:
        self.place(symbol, Side.BUY, quantity)

    @precondition(lambda self: bool(self.model.orders))
    @rule(data=st.data(), price=prices, fee_rate=fee_rates, beyond_cash=st.booleans(),
          part=st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("1.5")]))  # 1.5: more than was ordered
    def fill_order(self, data: st.DataObject, price: Decimal, fee_rate: Decimal, beyond_cash: bool,
                   part: Decimal) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.model.orders, key=str)))
        ordered = self.model.orders[order_id][2]
        quantity = (ordered * part).quantize(Decimal("1e-8")) or ordered
        if beyond_cash:  # a buy at this price costs more than the cash
            price = (self.model.cash / quantity).quantize(Decimal("1e-6"), rounding=ROUND_UP) + 1
        self.fill(order_id, price, quantity, price * quantity * fee_rate)

    @precondition(lambda self: bool(self.model.orders))
    @rule(data=st.data())
    def cancel_order(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.model.orders, key=str)))
        self.expect(None, lambda: self.account.cancel_order(order_id, reason="test", at=self.tick()))
        del self.model.orders[order_id]
        self.model.closed.append(order_id)

    @precondition(lambda self: bool(self.model.closed))
    @rule(data=st.data(), fill=st.booleans())
    def act_on_a_closed_order(self, data: st.DataObject, fill: bool) -> None:
        order_id = data.draw(st.sampled_from(self.model.closed))
        if fill:
            command = lambda: self.account.fill_order(order_id, price=Decimal(1), quantity=Decimal("1e-8"),  # noqa: E731
                                                      fee=Decimal(0), at=self.tick())
        else:
            command = lambda: self.account.cancel_order(order_id, reason="test", at=self.tick())  # noqa: E731
        self.expect(errors.UnknownOrder, command)

    @rule(rule_name=halt_rules)
    def halt(self, rule_name: str) -> None:
        refusal = errors.AlreadyHalted if self.model.halted_by is not None else None
        self.expect(refusal, lambda: self.account.halt_trading(rule=rule_name, reason="test", metrics={}, by="test",
                                                               at=self.tick()))
        self.model.halted_by = self.model.halted_by or rule_name

    @rule(rule_name=halt_rules)
    def escalate_halt(self, rule_name: str) -> None:
        halted_by = self.model.halted_by
        refusal = errors.NotHalted if halted_by is None else errors.AlreadyHalted if halted_by == rule_name else None
        self.expect(refusal, lambda: self.account.escalate_halt(rule=rule_name, reason="test", metrics={},
                                                                by="test", at=self.tick()))
        if refusal is None:
            self.model.halted_by = rule_name

    @rule()
    def resume(self) -> None:
        refusal = errors.NotHalted if self.model.halted_by is None else None
        self.expect(refusal, lambda: self.account.resume_trading(by="test", reason="test", at=self.tick()))
        self.model.halted_by = None

    @invariant()
    def the_account_holds_what_the_model_predicts(self) -> None:
        assert self.account.cash == self.model.cash
        assert {s: (p.quantity, p.cost) for s, p in self.account.positions.items()} == self.model.positions
        assert {o.order_id: (o.symbol, o.side, o.quantity) for o in self.account.orders.values()} == self.model.orders
        assert self.account.halted_by_rule == self.model.halted_by

    @invariant()
    def trial_balance_is_zero(self) -> None:
        assert self.account.trial_balance() == 0

    @invariant()
    def nothing_goes_negative(self) -> None:
        assert self.account.cash >= 0
        assert all(p.quantity > 0 and p.cost >= 0 for p in self.account.positions.values())

    @invariant()
    def reloading_gives_the_same_state(self) -> None:
        reloaded = self.store.repository.get(self.account.id)
        assert reloaded.snapshot_state() == self.account.snapshot_state()

AccountMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestAccountLedger = AccountMachine.TestCase


def test_a_buy_then_a_sell_posts_balanced_journals_and_realises_the_difference() -> None:
    account = Account.open("paper", "BTC", Decimal("1"), at=START)
    buy = account.place_order("ETH/BTC", Side.BUY, Decimal("2"), at=START)
    account.fill_order(buy, price=Decimal("0.1"), quantity=Decimal("2"), fee=Decimal("0.0002"), at=START)
    sell = account.place_order("ETH/BTC", Side.SELL, Decimal("2"), at=START)
    pnl = account.fill_order(sell, price=Decimal("0.11"), quantity=Decimal("2"), fee=Decimal("0.00022"), at=START)

    assert pnl == Decimal("0.02")
    assert account.cash == Decimal("1") + Decimal("0.02") - Decimal("0.00042")
    assert account.realised_pnl == Decimal("0.02") and account.fees_paid == Decimal("0.00042")
    assert account.positions == {} and account.trial_balance() == 0


def test_refusals_name_the_reason() -> None:
    account = Account.open("paper", "BTC", Decimal("1"), at=START)
    with pytest.raises(errors.InsufficientPosition, match="exceeds the open position"):
        account.place_order("ETH/BTC", Side.SELL, Decimal("1"), at=START)
    order = account.place_order("ETH/BTC", Side.BUY, Decimal("100"), at=START)
    with pytest.raises(errors.InsufficientFunds, match="costs 10.0.* cash is 1"):
        account.fill_order(order, price=Decimal("0.1"), quantity=Decimal("100"), fee=Decimal(0), at=START)
    with pytest.raises(errors.InvalidValue, match="at: expected a timezone-aware UTC datetime"):
        account.place_order("ETH/BTC", Side.BUY, Decimal(1), at=datetime(2024, 1, 1))
    account.halt_trading(rule="manual", reason="x", metrics={}, by="api", at=START)
    with pytest.raises(errors.TradingIsHalted, match="halted by manual"):
        account.place_order("ETH/BTC", Side.BUY, Decimal(1), at=START)
    with pytest.raises(errors.AlreadyHalted):
        account.halt_trading(rule="manual", reason="x", metrics={}, by="api", at=START)
