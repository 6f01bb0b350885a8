"""The Account ledger driven by random command sequences: invariants hold after every step."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.database import upgrade
from adapters.eventstore import open_store
from domain import errors
from domain.account import Account
from domain.values import Side

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SYMBOLS = ("ETH/BTC", "LTC/BTC")
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=6)
quantities = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("50"), places=8)
fee_rates = st.sampled_from([Decimal(0), Decimal("0.001"), Decimal("0.0075")])


class AccountMachine(RuleBasedStateMachine):
    """Commands in any order; refusals must be domain errors and change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self.folder.name) / 'ledger.sqlite'}"
        upgrade(url)
        self.store = open_store(url)
        self.account = Account.open("paper", "BTC", Decimal("10"), at=START)
        self.store.save(self.account)
        self.clock = START

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=5)
        return self.clock

    def attempt(self, command) -> None:  # type: ignore[no-untyped-def]
        version = self.account.version
        try:
            command()
        except errors.DomainError:
            assert self.account.version == version, "a refused command must not change the account"
        self.store.save(self.account)

    @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(Side), quantity=quantities)
    def place_order(self, symbol: str, side: Side, quantity: Decimal) -> None:
        self.attempt(lambda: self.account.place_order(symbol, side, quantity, at=self.tick()))

    @precondition(lambda self: bool(self.account.orders))
    @rule(data=st.data(), price=prices, fee_rate=fee_rates, part=st.sampled_from([Decimal(1), Decimal("0.5")]))
    def fill_order(self, data: st.DataObject, price: Decimal, fee_rate: Decimal, part: Decimal) -> None:
        order = data.draw(st.sampled_from(sorted(self.account.orders.values(), key=lambda o: str(o.order_id))))
        quantity = (order.quantity * part).quantize(Decimal("1e-8")) or order.quantity
        fee = price * quantity * fee_rate
        self.attempt(lambda: self.account.fill_order(order.order_id, price=price, quantity=quantity, fee=fee,
                                                     at=self.tick()))

    @precondition(lambda self: bool(self.account.orders))
    @rule(data=st.data())
    def cancel_order(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.account.orders, key=str)))
        self.attempt(lambda: self.account.cancel_order(order_id, reason="test", at=self.tick()))

    @rule()
    def halt(self) -> None:
        self.attempt(lambda: self.account.halt_trading(rule="manual", reason="test", metrics={}, by="test",
                                                       at=self.tick()))

    @rule()
    def resume(self) -> None:
        self.attempt(lambda: self.account.resume_trading(by="test", reason="test", at=self.tick()))

    @invariant()
    def trial_balance_is_zero(self) -> None:
        assert self.account.trial_balance() == 0

    @invariant()
    def nothing_goes_negative(self) -> None:
        assert self.account.cash >= 0
        assert all(p.quantity > 0 and p.cost >= 0 for p in self.account.positions.values())

    @invariant()
    def halted_accounts_place_no_entries(self) -> None:
        if self.account.is_halted:
            with pytest.raises(errors.TradingIsHalted):
                self.account.place_order("ETH/BTC", Side.BUY, Decimal(1), at=self.clock)

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
