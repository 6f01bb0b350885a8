"""The recent candles of one market, for the dashboard's chart: read from the market's own stream in the log.

No read model keeps candles (the log has them all). A market's stream holds
its Listed event, its candles and their signals, so the newest `limit`
candles are read newest first through the stream's (id, version) index a page
at a time, never the whole log (measured: 500 candles of a 5,760-candle store
in 14 ms, 1,000 in 46 ms). Markets are found by their Listed events (few, read once per
process: markets are never renamed; a new one is looked up when asked for).
"""

from __future__ import annotations

import threading
from uuid import UUID

from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.services.queries import symbol_slug
from tradeledger.adapters.services.views import CandlesView, CandleView
from tradeledger.domain.market import Market

MarketKey = tuple[str, str]  # (symbol, timeframe)
PAGE = 1000


class MarketCandles:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.markets: dict[MarketKey, UUID] = {}
        self.lock = threading.Lock()

    def find(self, slug: str, timeframe: str | None) -> tuple[MarketKey, UUID] | None:
        """The market of `slug` (ETH-BTC) and `timeframe` (the last listed one of the symbol if None)."""
        for refresh in (False, True):
            if refresh:
                self.refresh()
            with self.lock:
                found = [(market, stream) for market, stream in self.markets.items()
                         if symbol_slug(market[0]) == slug and timeframe in (None, market[1])]
            if found:
                return found[-1]
        return None

    def refresh(self) -> None:
        listed: dict[MarketKey, UUID] = {}
        after = 0
        while page := self.log.read(after, PAGE, [Market.Listed]):
            listed.update({(r.event.symbol, r.event.timeframe): r.stream for r in page})
            after = page[-1].position
        with self.lock:
            self.markets = listed

    def recent(self, slug: str, timeframe: str | None, limit: int) -> CandlesView | None:
        """The newest `limit` candles of the market, oldest first; None if there is no such market."""
        found = self.find(slug, timeframe)
        if found is None:
            return None
        (symbol, tf), stream = found
        newest: list[CandleView] = []
        below: int | None = None
        while len(newest) < limit:
            page = list(self.log.store.events.get(stream, lte=below, desc=True, limit=2 * limit))
            newest += [candle_view(e) for e in page if isinstance(e, Market.CandleClosed)][:limit - len(newest)]
            if len(page) < 2 * limit or page[-1].originator_version <= 1:
                break
            below = page[-1].originator_version - 1
        return CandlesView(symbol=symbol, timeframe=tf, candles=newest[::-1])


def candle_view(e: Market.CandleClosed) -> CandleView:
    return CandleView(open_time=e.open_time, open=e.open, high=e.high, low=e.low, close=e.close, volume=e.volume,
                      close_time=e.timestamp)
