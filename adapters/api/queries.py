"""Read-model queries for the API: SQL over the projections' tables, rows -> response views.

Every method opens one connection from the engine's pool and returns it when
the query is done, also when it fails, so a request never holds a connection
beyond its own query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from adapters.api.messages import activity_view, signal_view
from adapters.api.schemas import (
    ActivityView,
    ConnectionsView,
    DailyPnlView,
    EquityPoint,
    FillView,
    GatewayView,
    OrderView,
    PortfolioView,
    PositionView,
    SessionView,
    SignalView,
    TradeView,
)
from projections.activity import ACTIVITY
from projections.connections import GATEWAYS, SESSIONS
from projections.health import HealthReport
from projections.healthview import read_health
from projections.portfolio import ACCOUNTS, DAILY_PNL, EQUITY, FILLS, ORDERS, POSITIONS, TRADES, AccountRow
from projections.registry import PROJECTIONS
from projections.rows import RowTable
from projections.signals import SIGNALS
from projections.sql import TRACKING, read_tracking

V = TypeVar("V")
HUNDRED = Decimal(100)


def symbol_slug(symbol: str) -> str:
    """`ETH/BTC` -> `ETH-BTC`: how a symbol appears in a URL path."""
    return symbol.replace("/", "-")


def views(table: RowTable[Any], result: sa.Result[Any], view: type[V]) -> list[V]:
    return msgspec.convert(table.from_rows(result), list[view], from_attributes=True)  # type: ignore[valid-type]


class ReadModels:
    def __init__(self, engine: sa.Engine, account: str) -> None:
        self.engine = engine
        self.account = account

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    def read(self, query: Callable[[sa.Connection], V]) -> V:
        with self.connect() as conn:
            return query(conn)

    # -- portfolio ----------------------------------------------------------------

    def portfolio(self) -> PortfolioView | None:
        return self.read(self._portfolio)

    def _portfolio(self, conn: sa.Connection) -> PortfolioView | None:
        found = ACCOUNTS.from_rows(conn.execute(sa.select(ACCOUNTS.table).where(
            ACCOUNTS.table.c.account == self.account)))
        if not found:
            return None
        account: AccountRow = found[0]
        held = POSITIONS.from_rows(conn.execute(self._where(POSITIONS)))
        open_orders = conn.execute(sa.select(sa.func.count()).select_from(ORDERS.table).where(
            ORDERS.table.c.account == self.account, ORDERS.table.c.status == "open")).scalar_one()
        (tracking,) = read_tracking(conn, [p for p in PROJECTIONS if p.name == "portfolio"]).values()
        return PortfolioView(
            account=account.account, quote_currency=account.quote_currency,
            initial_balance=account.initial_balance, cash=account.cash, equity=account.equity,
            realised_pnl=account.realised_pnl, unrealised_pnl=sum((p.unrealised_pnl for p in held), Decimal(0)),
            fees=account.fees,
            return_percent=(account.equity - account.initial_balance) / account.initial_balance * HUNDRED,
            halted=account.halted, halted_rule=account.halted_rule, halted_reason=account.halted_reason,
            open_orders=open_orders, trades_closed=account.trades_closed, opened_at=account.opened_at,
            mark_time=account.mark_time, position=tracking.position,
        )

    def positions(self) -> list[PositionView]:
        return self.read(lambda conn: views(POSITIONS, conn.execute(
            self._where(POSITIONS).order_by(POSITIONS.table.c.symbol)), PositionView))

    def orders(self, status: str | None, limit: int) -> list[OrderView]:
        c = ORDERS.table.c
        query = self._where(ORDERS).order_by(c.placed_at.desc(), c.order_id).limit(limit)
        if status is not None:
            query = query.where(c.status == status)
        return self.read(lambda conn: views(ORDERS, conn.execute(query), OrderView))

    def fills(self, limit: int) -> list[FillView]:
        query = self._where(FILLS).order_by(FILLS.table.c.position.desc()).limit(limit)
        return self.read(lambda conn: views(FILLS, conn.execute(query), FillView))

    def trades(self, limit: int) -> list[TradeView]:
        query = self._where(TRADES).order_by(TRADES.table.c.seq.desc()).limit(limit)
        return self.read(lambda conn: views(TRADES, conn.execute(query), TradeView))

    def equity(self, start: datetime | None, end: datetime | None, limit: int) -> list[EquityPoint]:
        """The last `limit` points in [start, end], oldest first."""
        c = EQUITY.table.c
        query = self._where(EQUITY).order_by(c.time.desc()).limit(limit)
        query = query.where(c.time >= start) if start else query
        query = query.where(c.time <= end) if end else query
        return self.read(lambda conn: views(EQUITY, conn.execute(query), EquityPoint))[::-1]

    def daily_pnl(self, start: date | None, end: date | None) -> list[DailyPnlView]:
        c = DAILY_PNL.table.c
        query = self._where(DAILY_PNL).order_by(c.day)
        query = query.where(c.day >= start) if start else query
        query = query.where(c.day <= end) if end else query
        return self.read(lambda conn: views(DAILY_PNL, conn.execute(query), DailyPnlView))

    def _where(self, table: RowTable[Any]) -> sa.Select[Any]:
        return sa.select(table.table).where(table.table.c.account == self.account)

    # -- signals and activity -------------------------------------------------

    def signals(self) -> list[SignalView]:
        query = sa.select(SIGNALS.table).order_by(SIGNALS.table.c.symbol, SIGNALS.table.c.timeframe)
        return self.read(lambda conn: [signal_view(row) for row in SIGNALS.from_rows(conn.execute(query))])

    def signal(self, slug: str, timeframe: str | None) -> SignalView | None:
        """The latest signal of the symbol whose slug is `slug`; the most recent timeframe unless one is named."""
        matching = [s for s in self.signals() if symbol_slug(s.symbol) == slug
                    and (timeframe is None or s.timeframe == timeframe)]
        return max(matching, key=lambda s: s.position, default=None)

    def activity(self, limit: int) -> list[ActivityView]:
        query = sa.select(ACTIVITY.table).order_by(ACTIVITY.table.c.position.desc()).limit(limit)
        return self.read(lambda conn: [activity_view(row) for row in ACTIVITY.from_rows(conn.execute(query))])

    # -- operations -----------------------------------------------------------

    def connections(self) -> ConnectionsView:
        return self.read(self._connections)

    def _connections(self, conn: sa.Connection) -> ConnectionsView:
        sessions = views(SESSIONS, conn.execute(sa.select(SESSIONS.table).order_by(
            SESSIONS.table.c.connected_at)), SessionView)
        running = GATEWAYS.from_rows(conn.execute(sa.select(GATEWAYS.table).where(
            GATEWAYS.table.c.stopped_at.is_(None)).order_by(GATEWAYS.table.c.started_at)))
        counts: dict[Any, int] = {}
        for session in sessions:
            counts[session.gateway_id] = counts.get(session.gateway_id, 0) + 1
        gateways = [GatewayView(gateway_id=g.gateway_id, kind=g.kind, host=g.host, pid=g.pid,
                                started_at=g.started_at, open_sessions=counts.get(g.gateway_id, 0)) for g in running]
        return ConnectionsView(open=len(sessions), gateways=gateways, sessions=sessions)

    def health(self, *, head: int | None, now: datetime, heartbeat_interval: float) -> HealthReport:
        return read_health(self.engine, head=head, now=now, heartbeat_interval=heartbeat_interval)

    def missing_tables(self) -> list[str]:
        """The read-model tables missing from the database (empty when migrated)."""
        names = [t.name for p in PROJECTIONS for t in p.tables] + [TRACKING.name]
        with self.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
        return [n for n in names if n not in present]
