"""Portfolio read endpoints: the account, positions, orders, fills, round trips, equity, daily PnL."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery, QueryParameter

from tradeledger.adapters.api.deps import ReadModelsDep
from tradeledger.adapters.api.errors import documented
from tradeledger.adapters.api.routes.params import Limit, ordered, utc
from tradeledger.adapters.services.views import (
    DailyPnlView,
    EquityPoint,
    FillView,
    OrderView,
    PortfolioView,
    PositionView,
    TradeView,
)

EQUITY_LIMIT = 10_000


@get("/portfolio", sync_to_thread=True, responses=documented(404))
def portfolio(read_models: ReadModelsDep) -> PortfolioView:
    """Cash, equity, PnL and fees of the configured account, as of `position` in the log."""
    view = read_models.portfolio()
    if view is None:
        raise NotFoundException(f"account {read_models.account!r} has not been opened yet (no agent has run)")
    return view


@get("/positions", sync_to_thread=True)
def positions(read_models: ReadModelsDep) -> list[PositionView]:
    """Open positions, valued at the last candle close of their symbol."""
    return read_models.positions()


@get("/orders", sync_to_thread=True, responses=documented(400))
def orders(read_models: ReadModelsDep, status: FromQuery[Literal["open", "filled", "cancelled"] | None] = None,
           limit: Limit = 100) -> list[OrderView]:
    """Orders, newest first; `status` filters."""
    return read_models.orders(status, limit)


@get("/fills", sync_to_thread=True, responses=documented(400))
def fills(read_models: ReadModelsDep, limit: Limit = 100) -> list[FillView]:
    """Executions, newest first."""
    return read_models.fills(limit)


@get("/trades", sync_to_thread=True, responses=documented(400))
def trades(read_models: ReadModelsDep, limit: Limit = 100) -> list[TradeView]:
    """Closed round trips, newest first."""
    return read_models.trades(limit)


@get("/equity", sync_to_thread=True, responses=documented(400))
def equity(
    read_models: ReadModelsDep,
    start: Annotated[datetime | None, QueryParameter(name="from", description="ISO-8601 time with offset")] = None,
    end: Annotated[datetime | None, QueryParameter(name="to", description="ISO-8601 time with offset")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=EQUITY_LIMIT)] = 1000,
) -> list[EquityPoint]:
    """The equity curve (one point per candle time), oldest first: the last `limit` points in [from, to]."""
    start, end = utc("from", start), utc("to", end)
    ordered("from", start, "to", end)
    return read_models.equity(start, end, limit)


@get("/pnl/daily", sync_to_thread=True, responses=documented(400))
def daily_pnl(
    read_models: ReadModelsDep,
    start: Annotated[date | None, QueryParameter(name="from", description="first UTC day, YYYY-MM-DD")] = None,
    end: Annotated[date | None, QueryParameter(name="to", description="last UTC day, YYYY-MM-DD")] = None,
) -> list[DailyPnlView]:
    """Change in equity per UTC day; the days sum to equity minus the initial balance."""
    ordered("from", start, "to", end)
    return read_models.daily_pnl(start, end)


ROUTES = [portfolio, positions, orders, fills, trades, equity, daily_pnl]
