"""Read-model queries for the API: SQL over the projections' tables, rows -> response views.

Every read opens one connection from the engine's pool and returns it when the
query is done, also when it fails, so a request never holds a connection
beyond its own query. A read is one snapshot (projections.snapshot): the
tracking position and every table an answer combines are read as of the same
commit, and the answer carries that position.

Results are cached by the log position their projection has applied: a read
first looks up that position (one primary-key lookup) and answers from the
cache when the read model has not moved since the same question was last
answered. Read models change only when their projection commits, so a cached
answer is never older than the position just read. Measured with
scripts/bench_api.py on the 2-core machine: /api/portfolio went from about 700
to about 4,700 requests/s, /api/equity?limit=500 from about 300 to 2,400.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from tradeledger.adapters.services.views import (
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
from tradeledger.projections.activity import ACTIVITY, ACTIVITY_PROJECTION
from tradeledger.projections.connections import CONNECTIONS_PROJECTION
from tradeledger.projections.connections_rows import GATEWAYS, SESSIONS
from tradeledger.projections.models import MODELS_PROJECTION
from tradeledger.projections.models_view import ModelsView, scoreboard
from tradeledger.projections.portfolio import PORTFOLIO
from tradeledger.projections.portfolio_rows import (
    ACCOUNTS,
    DAILY_PNL,
    EQUITY,
    FILLS,
    ORDERS,
    POSITIONS,
    TRADES,
    AccountRow,
    PositionRow,
)
from tradeledger.projections.registry import PROJECTIONS
from tradeledger.projections.rows import RowTable
from tradeledger.projections.signals import SIGNALS, SIGNALS_PROJECTION
from tradeledger.projections.snapshot import snapshot
from tradeledger.projections.sql import TRACKING, row_source

V = TypeVar("V")
HUNDRED = Decimal(100)
CACHE_ENTRIES = 512
NEVER_RUN = -1  # the tracking position of a projection that has not run yet
_POSITION = sa.select(TRACKING.c.position).where(TRACKING.c.name == sa.bindparam("name"))


def symbol_slug(symbol: str) -> str:
    """`ETH/BTC` -> `ETH-BTC`: how a symbol appears in a URL path."""
    return symbol.replace("/", "-")


def views(table: RowTable[Any], result: sa.Result[Any], view: type[V]) -> list[V]:
    return msgspec.convert(table.from_rows(result), list[view], from_attributes=True)  # type: ignore[valid-type]


def view(view_type: type[V], row: msgspec.Struct, computed: dict[str, Any]) -> V:
    """The view of `row` with the fields it computes added; msgspec checks that every field is there."""
    return msgspec.convert(msgspec.structs.asdict(row) | computed, view_type)


class VersionedCache:
    """Answers by question, each valid for the read-model position it was computed at (thread-safe LRU)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self.answers: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, question: Hashable, position: int) -> tuple[bool, Any]:
        with self.lock:
            found = self.answers.get(question)
            if found is None or found[0] != position:
                return False, None
            self.answers.move_to_end(question)
            return True, found[1]

    def put(self, question: Hashable, position: int, answer: Any) -> None:
        with self.lock:
            self.answers[question] = (position, answer)
            self.answers.move_to_end(question)
            if len(self.answers) > self.entries:
                self.answers.popitem(last=False)


class ReadModelQueries:
    """The stored read models as the API and the bot ask for them: one account's views, cached per position."""

    def __init__(self, engine: sa.Engine, account: str) -> None:
        self.engine = engine
        self.account = account
        self.cache = VersionedCache()

    def read(self, projection: str, question: Hashable, query: Callable[[sa.Connection, int], V]) -> V:
        """`query(conn, position)`'s answer as of `projection`'s current position, cached per position."""
        with snapshot(self.engine) as conn:
            position = conn.execute(_POSITION, {"name": projection}).scalar()
            position = NEVER_RUN if position is None else position
            hit, answer = self.cache.get(question, position)
            if not hit:
                answer = query(conn, position)
                self.cache.put(question, position, answer)
        return answer  # type: ignore[no-any-return]

    def rows(self, projection: str, question: Hashable, query: sa.Select[Any], table: RowTable[Any],
             view: type[V]) -> list[V]:
        return self.read(projection, question, lambda conn, _position: views(table, conn.execute(query), view))

    # -- portfolio ----------------------------------------------------------------

    def portfolio(self) -> PortfolioView | None:
        return self.read(PORTFOLIO.name, "portfolio", self._portfolio)

    def _portfolio(self, conn: sa.Connection, position: int) -> PortfolioView | None:
        found = ACCOUNTS.from_rows(conn.execute(self._where(ACCOUNTS)))
        if not found:
            return None
        account: AccountRow = found[0]
        held: list[PositionRow] = POSITIONS.from_rows(conn.execute(self._where(POSITIONS)))
        open_orders = conn.execute(sa.select(sa.func.count()).select_from(ORDERS.table).where(
            ORDERS.table.c.account == self.account, ORDERS.table.c.status == "open")).scalar_one()
        return view(PortfolioView, account, {
            "gross_pnl": account.realised_pnl, "net_pnl": account.realised_pnl - account.fees,
            "unrealised_pnl": sum((p.unrealised_pnl for p in held), Decimal(0)),
            "position_value": sum((p.value for p in held), Decimal(0)),
            "return_percent": (account.equity - account.initial_balance) / account.initial_balance * HUNDRED,
            "open_orders": open_orders, "position": position,
        })

    def positions(self) -> list[PositionView]:
        query = self._where(POSITIONS).order_by(POSITIONS.table.c.symbol)
        return self.rows(PORTFOLIO.name, "positions", query, POSITIONS, PositionView)

    def orders(self, status: str | None, limit: int) -> list[OrderView]:
        c = ORDERS.table.c
        query = self._where(ORDERS).order_by(c.placed_at.desc(), c.order_id).limit(limit)
        if status is not None:
            query = query.where(c.status == status)
        return self.rows(PORTFOLIO.name, ("orders", status, limit), query, ORDERS, OrderView)

    def fills(self, limit: int) -> list[FillView]:
        query = self._where(FILLS).order_by(FILLS.table.c.position.desc()).limit(limit)
        return self.rows(PORTFOLIO.name, ("fills", limit), query, FILLS, FillView)

    def trades(self, limit: int) -> list[TradeView]:
        query = self._where(TRADES).order_by(TRADES.table.c.seq.desc()).limit(limit)
        return self.read(PORTFOLIO.name, ("trades", limit), lambda conn, _position: [
            view(TradeView, row, {"gross_pnl": row.pnl + row.fees, "net_pnl": row.pnl})
            for row in TRADES.from_rows(conn.execute(query))])

    def equity(self, start: datetime | None, end: datetime | None, limit: int) -> list[EquityPoint]:
        """The last `limit` points in [start, end], oldest first."""
        c = EQUITY.table.c
        query = self._where(EQUITY).order_by(c.time.desc()).limit(limit)
        query = query.where(c.time >= start) if start else query
        query = query.where(c.time <= end) if end else query
        newest_first = self.rows(PORTFOLIO.name, ("equity", start, end, limit), query, EQUITY, EquityPoint)
        return newest_first[::-1]

    def daily_pnl(self, start: date | None, end: date | None) -> list[DailyPnlView]:
        c = DAILY_PNL.table.c
        query = self._where(DAILY_PNL).order_by(c.day)
        query = query.where(c.day >= start) if start else query
        query = query.where(c.day <= end) if end else query
        return self.rows(PORTFOLIO.name, ("daily_pnl", start, end), query, DAILY_PNL, DailyPnlView)

    def _where(self, table: RowTable[Any]) -> sa.Select[Any]:
        return sa.select(table.table).where(table.table.c.account == self.account)

    # -- signals and activity -------------------------------------------------

    def signals(self) -> list[SignalView]:
        query = sa.select(SIGNALS.table).order_by(SIGNALS.table.c.symbol, SIGNALS.table.c.timeframe)
        return self.rows(SIGNALS_PROJECTION.name, "signals", query, SIGNALS, SignalView)

    def signal(self, slug: str, timeframe: str | None) -> SignalView | None:
        """The latest signal of the symbol whose slug is `slug`; the most recent timeframe unless one is named."""
        matching = [s for s in self.signals() if symbol_slug(s.symbol) == slug
                    and (timeframe is None or s.timeframe == timeframe)]
        return max(matching, key=lambda s: s.position, default=None)

    def models(self) -> ModelsView:
        """The model scoreboard (projections.models_view)."""
        return self.read(MODELS_PROJECTION.name, "models",
                         lambda conn, position: scoreboard(row_source(conn), position))

    def activity(self, limit: int) -> list[ActivityView]:
        query = sa.select(ACTIVITY.table).order_by(ACTIVITY.table.c.position.desc()).limit(limit)
        return self.rows(ACTIVITY_PROJECTION.name, ("activity", limit), query, ACTIVITY, ActivityView)

    # -- operations -----------------------------------------------------------

    def connections(self) -> ConnectionsView:
        return self.read(CONNECTIONS_PROJECTION.name, "connections", self._connections)

    def _connections(self, conn: sa.Connection, position: int) -> ConnectionsView:
        sessions = views(SESSIONS, conn.execute(sa.select(SESSIONS.table).order_by(
            SESSIONS.table.c.connected_at)), SessionView)
        running = GATEWAYS.from_rows(conn.execute(sa.select(GATEWAYS.table).where(
            GATEWAYS.table.c.stopped_at.is_(None)).order_by(GATEWAYS.table.c.started_at)))
        counts: dict[Any, int] = {}
        for session in sessions:
            counts[session.gateway_id] = counts.get(session.gateway_id, 0) + 1
        gateways = [view(GatewayView, g, {"open_sessions": counts.get(g.gateway_id, 0)}) for g in running]
        return ConnectionsView(open=len(sessions), gateways=gateways, sessions=sessions, position=position)

    def missing_tables(self) -> list[str]:
        """The read-model tables missing from the database (empty when migrated)."""
        names = [t.name for p in PROJECTIONS for t in p.tables] + [TRACKING.name]
        with self.engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
        return [n for n in names if n not in present]
