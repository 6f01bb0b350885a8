"""The metrics traders compare, over the account's whole history or a span of it (docs/metrics.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter

from tradeledger.adapters.api.errors import documented
from tradeledger.adapters.api.routes.params import ordered, utc
from tradeledger.adapters.services.metrics import Metrics, Period, compute
from tradeledger.adapters.services.metrics_log import HistoryLog

HistoryDep: TypeAlias = NamedDependency[HistoryLog]


@get("/metrics", sync_to_thread=True, responses=documented(400, 404))
def metrics(
    history_log: HistoryDep,
    start: Annotated[datetime | None, QueryParameter(name="from", description="ISO-8601 business time with offset; "
                                                                              "included")] = None,
    end: Annotated[datetime | None, QueryParameter(name="to", description="ISO-8601 business time with offset; "
                                                                          "included")] = None,
    breakdown: Annotated[Period | None, QueryParameter(description="also the trades by day, week or month of exit"
                                                       )] = None,
) -> Metrics:
    """Returns, drawdown, Sharpe/Sortino/Calmar, trade statistics and the tables by pair, exit reason and period,
    folded from the log up to its head (what `tradeledger report` prints)."""
    start, end = utc("from", start), utc("to", end)
    ordered("from", start, "to", end)
    try:
        history = history_log.history()
    except LookupError:
        raise NotFoundException(f"account {history_log.account!r} has not been opened yet (no agent has run)"
                                ) from None
    return compute(history, start=start, end=end, breakdown=breakdown)


ROUTES = [metrics]
