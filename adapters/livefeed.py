"""The live exchange feed of `run --exchange` / `agent --exchange`: closed candles only, back-filled in order.

Each look at the exchange asks it for every candle of each market that has closed (by the exchange's
own clock, `Exchange.closed_candles`) after the last one recorded, and yields them in open-time order.
So a restart, a disconnect or an outage needs no special case: the next successful look back-fills
everything that closed meanwhile, from REST, before the feed goes on; what is recorded is never asked
for again (the session also skips any candle at or before a market's last recorded one). A candle the
exchange never returns stays a gap: the feed moves past it with the next candle it does return, and
the trader flags it (`gap_before:N`, `data_quality`).

Pacing: after a look, the feed sleeps until the next candle's close plus CLOSE_MARGIN by the
exchange's clock, in steps of at most `poll_interval` seconds (`exchange.poll_interval`), reading the
server's time again at each step; a failed look (ExchangeError after the adapter's own retries) is
retried every `poll_interval`. The sleeping is the session's (`wait`), so heartbeats go on and
operator commands are applied meanwhile. `FeedStatus` is what the agent reports in its heartbeats.
On a fresh store the feed starts WARMUP_CANDLES before the exchange's now, as the demo market does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import msgspec

from tradeledger.adapters.exchange import Exchange, ExchangeError
from tradeledger.adapters.feeds import WARMUP_CANDLES
from tradeledger.adapters.markets import market_settings, with_exchange_rules
from tradeledger.domain.values import Candle, timeframe_delta
from tradeledger.settings import Settings

log = logging.getLogger(__name__)

CLOSE_MARGIN = timedelta(seconds=1)  # exchanges publish a closed candle a moment after its close
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Wait = Callable[[float], bool]  # sleep up to this many seconds; False when the agent is stopping
LastRecorded = Callable[[str], datetime | None]  # a symbol's last recorded open time


@dataclass
class FeedStatus:
    """The feed as the agent reports it: `lag` is the exchange's now minus the last candle's close."""

    source: str
    lag: float = 0.0
    last_close: datetime | None = None
    reconnects: int = 0  # looks that succeeded after one or more failed
    failures: int = 0  # failed looks in a row (0: the last look succeeded)
    error: str | None = None  # the last failure, while failing


LAGGING_CANDLES = 2  # a feed whose last candle closed more than this many candle times ago is lagging


def feed_state(status: FeedStatus, *, candle_seconds: float, outage_after: float) -> str:
    """`down` while the exchange fails and the next candle is overdue by more than `outage_after` seconds
    (`exchange.outage_alert_after`); `lagging` while failing or more than LAGGING_CANDLES behind; else `live`."""
    overdue = status.lag - candle_seconds
    if status.failures and overdue > outage_after:
        return "down"
    return "lagging" if status.failures or status.lag > LAGGING_CANDLES * candle_seconds else "live"


def floor_time(moment: datetime, step: timedelta) -> datetime:
    return EPOCH + ((moment - EPOCH) // step) * step


class ExchangeFeed:
    def __init__(self, exchange: Exchange, symbols: Sequence[str], timeframe: str, *, poll_interval: float,
                 last_recorded: LastRecorded, status: FeedStatus | None = None) -> None:
        self.exchange = exchange
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.step = timeframe_delta(timeframe)
        self.poll_interval = poll_interval
        self.last_recorded = last_recorded
        self.status = status or FeedStatus(source=exchange.name)
        self.next_open: dict[str, datetime] = {}
        self.looked = time.monotonic()  # when the exchange last answered

    def candles(self, wait: Wait) -> Iterator[Candle]:
        """Closed candles, in order, until `wait` says stop."""
        while True:
            try:
                now, fresh = self.look()
            except ExchangeError as error:
                self.failed(error)
                if not wait(self.poll_interval):
                    return
                continue
            self.succeeded()
            for candle in fresh:
                self.next_open[candle.symbol] = candle.open_time + self.step
                self.status.last_close = max(self.status.last_close or candle.close_time, candle.close_time)
                yield candle
            self.status.lag = self.lag(now)
            self.looked = time.monotonic()
            if not wait(self.pause(now)):
                return

    def look(self) -> tuple[datetime, list[Candle]]:
        """The exchange's now and every candle closed since the last yielded, ordered by open time."""
        now = self.exchange.server_time()
        fresh: list[Candle] = []
        for symbol in self.symbols:
            since = self.since(symbol, now)
            if since + self.step <= now:  # one has closed: ask (closed_candles reads the server time again)
                fresh.extend(self.exchange.closed_candles(symbol, self.timeframe, since))
        # The order of a backtest of the same candles (adapters.candlefiles), so the two decide alike.
        return now, sorted(fresh, key=lambda c: (c.open_time, c.symbol))

    def since(self, symbol: str, now: datetime) -> datetime:
        if symbol not in self.next_open:
            last = self.last_recorded(symbol)
            self.next_open[symbol] = (last + self.step if last is not None
                                      else floor_time(now, self.step) - WARMUP_CANDLES * self.step)
        return self.next_open[symbol]

    def pause(self, now: datetime) -> float:
        """Until the next close (+ margin) by the exchange's clock, at most poll_interval."""
        next_close = min(self.next_open.values()) + self.step + CLOSE_MARGIN
        return min(max((next_close - now).total_seconds(), 0.0), self.poll_interval)

    def lag(self, now: datetime) -> float:
        last = self.status.last_close
        return 0.0 if last is None else max(0.0, (now - last).total_seconds())

    def failed(self, error: ExchangeError) -> None:
        if not self.status.failures:
            log.warning("live feed: %s (retrying every %ss)", error, self.poll_interval)
        self.status.failures += 1
        self.status.error = str(error)
        # Without the exchange's clock, the lag grows by the local clock's time since it last answered.
        self.status.lag += time.monotonic() - self.looked
        self.looked = time.monotonic()

    def succeeded(self) -> None:
        if self.status.failures:
            log.warning("live feed: %s answers again after %d failed looks", self.exchange.name,
                        self.status.failures)
            self.status.reconnects += 1
        self.status.failures, self.status.error = 0, None


def live_settings(settings: Settings, exchange: Exchange) -> Settings:
    """The settings of an agent trading `exchange`: `exchange.symbols` and `exchange.timeframe` (unset: the
    trading ones), the quote currency they fix, and the exchange's market rules (fee, steps, minimums)."""
    symbols = settings.exchange.symbols or settings.trading.symbols
    trading = msgspec.structs.replace(settings.trading,
                                      timeframe=settings.exchange.timeframe or settings.trading.timeframe)
    chosen = market_settings(msgspec.structs.replace(settings, trading=trading), symbols)
    return with_exchange_rules(chosen, exchange.markets(symbols))
