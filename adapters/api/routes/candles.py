"""The candles of one market (its recent ones, read from the log): what the dashboard's candle chart draws."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter

from tradeledger.adapters.api.deps import CandlesDep
from tradeledger.adapters.api.errors import documented
from tradeledger.adapters.api.routes.params import Limit
from tradeledger.adapters.services.views import CandlesView


@get("/candles/{symbol:str}", sync_to_thread=True, responses=documented(400, 404))
def candles(
    market_candles: CandlesDep,
    symbol: Annotated[str, PathParameter(description="the symbol with '-' for '/', e.g. ETH-BTC", max_length=64)],
    timeframe: Annotated[str | None, QueryParameter(description="e.g. 5m; the last listed market of the symbol if "
                                                                "omitted", max_length=16)] = None,
    limit: Limit = 500,
) -> CandlesView:
    """The newest `limit` closed candles of a market, oldest first (live ones follow as `mark` messages)."""
    found = market_candles.recent(symbol, timeframe, limit)
    if found is None:
        raise NotFoundException(f"no market {symbol!r}" + (f" timeframe {timeframe!r}" if timeframe else "")
                                + " (write ETH/BTC as ETH-BTC)")
    return found


ROUTES = [candles]
