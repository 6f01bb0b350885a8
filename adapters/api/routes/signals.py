"""The prediction cache: the latest signal per symbol and timeframe, with `fresh_until`.

Symbols contain '/', which cannot sit in one path segment: in the path a
symbol is written with '-' instead (`ETH/BTC` -> `/api/signals/ETH-BTC`).
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter

from tradeledger.adapters.api.deps import ReadModelsDep
from tradeledger.adapters.api.errors import documented
from tradeledger.adapters.services.views import SignalView


@get("/signals", sync_to_thread=True)
def signals(read_models: ReadModelsDep) -> list[SignalView]:
    """The latest signal of every symbol and timeframe."""
    return read_models.signals()


@get("/signals/{symbol:str}", sync_to_thread=True, responses=documented(400, 404))
def signal(
    read_models: ReadModelsDep,
    symbol: Annotated[str, PathParameter(description="the symbol with '-' for '/', e.g. ETH-BTC", max_length=64)],
    timeframe: Annotated[str | None, QueryParameter(description="e.g. 5m; the latest of any timeframe if omitted",
                                               max_length=16)] = None,
) -> SignalView:
    """The latest signal of one symbol (the prediction response)."""
    found = read_models.signal(symbol, timeframe)
    if found is None:
        raise NotFoundException(f"no signal for symbol {symbol!r}" + (f" timeframe {timeframe!r}" if timeframe else "")
                                + " (write ETH/BTC as ETH-BTC)")
    return found


ROUTES = [signals, signal]
