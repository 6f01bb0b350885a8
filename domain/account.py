"""The trading account: a double-entry ledger with orders and a trading switch.

Every fill posts balanced journal lines (position at cost, quote cash, fee
expense, realised trading income), so the trial balance is zero after every
event; cash and spot positions never go negative. These invariants are checked
here, where the state lives, before an event is triggered.

Ledger accounts (positive = debit):
  cash:<QUOTE>        quote currency held
  position:<SYMBOL>   open spot position, at cost
  expense:fees        fees paid
  income:trading      realised trading result (credit = gain)
  equity:capital      the opening balance
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from tradeledger.domain import errors, ids
from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.orders import FillBasis, Order, OrderBasis, Position, check_order
from tradeledger.domain.values import JournalLine, OrderType, Side, require_utc

# Money is rounded once, here, so every posting is exact and the journal balances.
MONEY_QUANTUM = Decimal("1e-12")
CAPITAL = "equity:capital"
FEES = "expense:fees"
TRADING_INCOME = "income:trading"


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_QUANTUM)


def cash_account(quote_currency: str) -> str:
    return f"cash:{quote_currency}"


def position_account(symbol: str) -> str:
    return f"position:{symbol}"


class Account(LedgerAggregate):
    class Opened(Aggregate.Created):
        name: str
        quote_currency: str
        initial_balance: Decimal
        journal: tuple[JournalLine, ...]

    class OrderPlaced(Aggregate.Event):
        order_id: UUID
        symbol: str
        side: Side
        quantity: Decimal
        order_type: OrderType
        signal_ref: str
        reason: str
        basis: OrderBasis | None = None  # None when recorded before 0.3
        exit_reason: str | None = None  # None: recorded before exit reasons (domain.exits.recorded_reason)
        limit_price: Decimal | None = None  # a limit or stop order's level; None: a market order

        def apply(self, account: Account) -> None:
            account.orders[self.order_id] = Order(
                order_id=self.order_id, symbol=self.symbol, side=self.side, quantity=self.quantity,
                placed_at=self.timestamp, order_type=self.order_type, limit_price=self.limit_price,
                exit_reason=self.exit_reason,
            )
            account.orders_placed += 1

    class OrderRejected(Aggregate.Event):
        symbol: str
        side: Side
        rule: str
        reason: str

    class OrderFilled(Aggregate.Event):
        order_id: UUID
        symbol: str
        side: Side
        price: Decimal
        quantity: Decimal
        fee: Decimal
        realised_pnl: Decimal
        filled_at: datetime
        journal: tuple[JournalLine, ...]
        basis: FillBasis | None = None  # None when recorded before 0.3

        def apply(self, account: Account) -> None:
            account.orders.pop(self.order_id)
            account.post(self.journal)
            position = account.positions.setdefault(self.symbol, Position())
            position.cost += next(
                line.amount for line in self.journal if line.account == position_account(self.symbol)
            )
            position.quantity += self.quantity if self.side is Side.BUY else -self.quantity
            if not position.quantity:
                del account.positions[self.symbol]

    class OrderCancelled(Aggregate.Event):
        order_id: UUID
        reason: str

        def apply(self, account: Account) -> None:
            account.orders.pop(self.order_id)

    class TradingHalted(Aggregate.Event):
        rule: str
        reason: str
        metrics: dict[str, str]
        by: str

        def apply(self, account: Account) -> None:
            account.halted_by_rule = self.rule

    class TradingResumed(Aggregate.Event):
        by: str
        reason: str

        def apply(self, account: Account) -> None:
            account.halted_by_rule = None

    class EntriesSwitched(Aggregate.Event):
        """stop_entry (stopped) or start_entry: while stopped entries are rejected; exits still run."""
        stopped: bool
        by: str
        reason: str

        def apply(self, account: Account) -> None:
            account.entries_stopped = self.stopped

    class CommandApplied(Aggregate.Event):
        """The operator command (domain.control) at log position `issued_at` took effect on this account."""
        command_id: UUID
        command: str
        issued_at: int

        def apply(self, account: Account) -> None:
            account.last_command_position = self.issued_at

    class CommandRefused(Aggregate.Event):
        """The command could not take effect (halt while halted): recorded, so it is never pending again."""
        command_id: UUID
        command: str
        issued_at: int
        reason: str

        def apply(self, account: Account) -> None:
            account.last_command_position = self.issued_at

    def __init__(
        self,
        name: str,
        quote_currency: str,
        initial_balance: Decimal,
        journal: tuple[JournalLine, ...],
    ) -> None:
        self.name = name
        self.quote_currency = quote_currency
        self.initial_balance = initial_balance
        self.balances: dict[str, Decimal] = {}
        self.positions: dict[str, Position] = {}
        self.orders: dict[UUID, Order] = {}
        self.orders_placed = 0
        self.halted_by_rule: str | None = None
        self.entries_stopped = False  # stop_entry: entries rejected, exits managed (domain.control)
        self.last_command_position = 0  # commands are applied in log order: every one up to here is handled
        self.post(journal)

    # -- commands ---------------------------------------------------------

    @classmethod
    def open(
        cls, name: str, quote_currency: str, initial_balance: Decimal, *, at: datetime
    ) -> Account:
        if initial_balance <= 0:
            raise errors.InvalidValue("initial_balance", initial_balance, "must be > 0")
        amount = money(initial_balance)
        journal = (
            JournalLine(account=cash_account(quote_currency), amount=amount),
            JournalLine(account=CAPITAL, amount=-amount),
        )
        return cls._create(
            cls.Opened,
            id=ids.account_id(name),
            name=name,
            quote_currency=quote_currency,
            initial_balance=amount,
            journal=journal,
            timestamp=require_utc("at", at),
        )

    def place_order(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        *,
        at: datetime,
        signal_ref: str = "",
        reason: str = "",
        basis: OrderBasis | None = None,
        exit_reason: str | None = None, order_type: OrderType = OrderType.MARKET, limit_price: Decimal | None = None,
    ) -> UUID:
        """`exit_reason` (domain.exits): why a sell closes the position; `limit_price`: a limit or stop order's."""
        if quantity <= 0:
            raise errors.InvalidValue("quantity", quantity, "must be > 0")
        check_order(side, order_type, limit_price, exit_reason)
        if side is Side.BUY and self.is_halted:
            raise errors.TradingIsHalted(
                f"trading is halted by {self.halted_by_rule}: no new entries"
            )
        if side is Side.SELL and quantity > self.committed_sell_room(symbol):
            raise errors.InsufficientPosition(
                f"sell {quantity} {symbol} exceeds the open position not already being sold"
            )
        new_id = ids.order_id(self.name, self.orders_placed + 1)
        self.trigger_event(
            self.OrderPlaced, order_id=new_id, symbol=symbol, side=side, quantity=quantity, order_type=order_type,
            signal_ref=signal_ref, reason=reason, basis=basis, exit_reason=exit_reason, limit_price=limit_price,
            timestamp=require_utc("at", at),
        )
        return new_id

    def reject_order(self, symbol: str, side: Side, *, rule: str, reason: str, at: datetime) -> None:
        self.trigger_event(
            self.OrderRejected,
            symbol=symbol,
            side=side,
            rule=rule,
            reason=reason,
            timestamp=require_utc("at", at),
        )

    def fill_order(
        self, order_id: UUID, *, price: Decimal, quantity: Decimal, fee: Decimal, at: datetime,
        basis: FillBasis | None = None,
    ) -> Decimal:
        """Fill an open order; returns the realised PnL (before fees) the fill closed."""
        order = self.open_order(order_id)
        if price <= 0 or quantity <= 0 or quantity > order.quantity or fee < 0:
            raise errors.InvalidValue(
                "fill", (price, quantity, fee), f"not a valid fill of order {order_id}"
            )
        at = require_utc("at", at)
        journal, pnl = self.fill_journal(order, money(price * quantity), money(fee), quantity)
        self.trigger_event(
            self.OrderFilled,
            order_id=order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            quantity=quantity,
            fee=money(fee),
            realised_pnl=pnl,
            filled_at=at,
            journal=journal,
            basis=basis,
            timestamp=at,
        )
        return pnl

    def cancel_order(self, order_id: UUID, *, reason: str, at: datetime) -> None:
        self.open_order(order_id)
        self.trigger_event(
            self.OrderCancelled, order_id=order_id, reason=reason, timestamp=require_utc("at", at)
        )

    def halt_trading(
        self, *, rule: str, reason: str, metrics: dict[str, str], by: str, at: datetime
    ) -> None:
        if self.is_halted:
            raise errors.AlreadyHalted(f"trading is already halted by {self.halted_by_rule}")
        self.record_halt(rule=rule, reason=reason, metrics=metrics, by=by, at=at)

    def escalate_halt(
        self, *, rule: str, reason: str, metrics: dict[str, str], by: str, at: datetime
    ) -> None:
        """A stricter rule takes over the halt in force (a drawdown breach while halted by the daily loss)."""
        if not self.is_halted:
            raise errors.NotHalted("trading is not halted: there is no halt to take over")
        if rule == self.halted_by_rule:
            raise errors.AlreadyHalted(f"trading is already halted by {rule}")
        self.record_halt(rule=rule, reason=reason, metrics=metrics, by=by, at=at)

    def record_halt(self, *, rule: str, reason: str, metrics: dict[str, str], by: str, at: datetime) -> None:
        self.trigger_event(self.TradingHalted, rule=rule, reason=reason, metrics=metrics, by=by,
                           timestamp=require_utc("at", at))

    def resume_trading(self, *, by: str, reason: str, at: datetime) -> None:
        if not self.is_halted:
            raise errors.NotHalted("trading is not halted")
        self.trigger_event(
            self.TradingResumed, by=by, reason=reason, timestamp=require_utc("at", at)
        )

    def switch_entries(self, *, stopped: bool, by: str, reason: str, at: datetime) -> None:
        if stopped == self.entries_stopped:
            raise errors.EntriesUnchanged(f"entries are already {'stopped' if stopped else 'allowed'}")
        self.trigger_event(self.EntriesSwitched, stopped=stopped, by=by, reason=reason, timestamp=require_utc("at", at))

    # -- queries ----------------------------------------------------------

    @property
    def is_halted(self) -> bool:
        return self.halted_by_rule is not None

    @property
    def cash(self) -> Decimal:
        return self.balances.get(cash_account(self.quote_currency), Decimal(0))

    @property
    def fees_paid(self) -> Decimal:
        return self.balances.get(FEES, Decimal(0))

    @property
    def realised_pnl(self) -> Decimal:
        return -self.balances.get(TRADING_INCOME, Decimal(0))

    def trial_balance(self) -> Decimal:
        return sum(self.balances.values(), Decimal(0))

    def position(self, symbol: str) -> Position:
        return self.positions.get(symbol, Position())

    def equity(self, last_prices: dict[str, Decimal]) -> Decimal:
        if not self.positions:  # flat, most ticks: the very Decimal the sum below gives, without its generator
            return self.cash + Decimal(0)
        marked = (
            position.quantity * last_prices.get(symbol, position.average_price)
            for symbol, position in self.positions.items()
        )
        return self.cash + sum(marked, Decimal(0))

    def open_order(self, order_id: UUID) -> Order:
        try:
            return self.orders[order_id]
        except KeyError:
            raise errors.UnknownOrder(f"order {order_id} is not open") from None

    def committed_sell_room(self, symbol: str) -> Decimal:
        selling = sum(
            (o.quantity for o in self.orders.values() if o.symbol == symbol and o.side is Side.SELL),
            Decimal(0),
        )
        return self.position(symbol).quantity - selling

    # -- ledger -----------------------------------------------------------

    def fill_journal(
        self, order: Order, value: Decimal, fee: Decimal, quantity: Decimal
    ) -> tuple[tuple[JournalLine, ...], Decimal]:
        cash, held = cash_account(self.quote_currency), position_account(order.symbol)
        if order.side is Side.BUY:
            if value + fee > self.cash:
                raise errors.InsufficientFunds(
                    f"buying {quantity} {order.symbol} costs {value + fee} "
                    f"{self.quote_currency}, cash is {self.cash}"
                )
            lines = [(held, value), (FEES, fee), (cash, -(value + fee))]
            return self.journal(lines), Decimal(0)
        position = self.position(order.symbol)
        if quantity > position.quantity:
            raise errors.InsufficientPosition(
                f"selling {quantity} {order.symbol}, position is {position.quantity}"
            )
        basis = (
            position.cost
            if quantity == position.quantity
            else money(position.cost * quantity / position.quantity)
        )
        pnl = value - basis
        lines = [(cash, value - fee), (FEES, fee), (held, -basis), (TRADING_INCOME, -pnl)]
        return self.journal(lines), pnl

    @staticmethod
    def journal(lines: list[tuple[str, Decimal]]) -> tuple[JournalLine, ...]:
        journal = tuple(JournalLine(account=a, amount=amount) for a, amount in lines if amount)
        if sum((line.amount for line in journal), Decimal(0)) != 0:
            raise errors.DomainError(f"unbalanced journal {journal}")
        return journal

    def post(self, journal: tuple[JournalLine, ...]) -> None:
        for line in journal:
            self.balances[line.account] = self.balances.get(line.account, Decimal(0)) + line.amount

    def snapshot_state(self) -> dict[str, Any]:
        """Comparable state, used by tests and `verify` to compare folds."""
        return {
            "balances": {k: v for k, v in sorted(self.balances.items()) if v},
            "positions": {s: (p.quantity, p.cost) for s, p in sorted(self.positions.items())},
            "orders": sorted(str(o) for o in self.orders),
            "halted_by_rule": self.halted_by_rule,
            "version": self.version,
        }
