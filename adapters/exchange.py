"""Exchange market data through ccxt: a market's trading rules, the server's time and closed candles.

The interface (used by `download` and the live feed):
- `Exchange(name, *, api_url=None, timeout=10.0, retries=5, sleep=time.sleep, page_limit=None)`;
  constructing one touches no network and does not even import ccxt (about 0.25 s): the first
  call does;
- `markets(symbols) -> dict[str, MarketRules]`: symbol, base/quote, price and amount steps,
  minimum amount and notional, taker fee;
- `server_time() -> datetime`: the exchange's clock (UTC);
- `closed_candles(symbol, timeframe, since, until=None) -> Iterator[Candle]`: every candle with
  `since <= open_time` (and `open_time < until`) that has closed by the server's time when the
  call started, in order, page by page (`page_limit` candles per request, the exchange's
  maximum by default). Nothing is invented: a candle the exchange does not return stays a gap.
- `ExchangeError`: one line, e.g. `binance unreachable after 6 tries: RequestTimeout ...`.

Only public market data is read: no API key is needed or used. ccxt's own rate limiter is on
(`enableRateLimit`); on top of it every request is retried `retries` times on network errors,
timeouts, 429/418 (waiting what `Retry-After` says) and 5xx, with exponential backoff; any
other error (an unknown symbol, a refused request) fails at once. `api_url` replaces the
scheme and host of the exchange's REST URLs (`https://api.binance.com` -> the given base), for
tests and regional endpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from tradeledger.adapters.errors import Refused
from tradeledger.domain.errors import InvalidValue
from tradeledger.domain.values import Candle, timeframe_seconds

if TYPE_CHECKING:
    import ccxt

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds: 0.5, 1, 2, 4, ... at most 30
RETRY_AFTER_MAX = 600.0  # a Retry-After beyond this is a ban, not a pause: wait this much and try again
MESSAGE_CHARS = 200  # ccxt's messages carry the whole response body
# Spot market data only; binance would otherwise also load futures markets and, with keys, margin pairs.
SPOT_OPTIONS: dict[str, Any] = {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                                "fetchCurrencies": False, "fetchMargins": False}

T = TypeVar("T")


class ExchangeError(Refused):
    """The exchange could not give what was asked: one line, naming the exchange."""


class MarketRules(msgspec.Struct, frozen=True, kw_only=True):
    """What the exchange says about trading one symbol; steps are tick sizes (0.001), not decimal places."""

    symbol: str
    base: str
    quote: str
    price_step: Decimal
    amount_step: Decimal
    min_amount: Decimal | None
    min_notional: Decimal | None
    taker_fee: Decimal | None


class Exchange:
    def __init__(self, name: str, *, api_url: str | None = None, timeout: float = 10.0, retries: int = 5,
                 sleep: Callable[[float], None] = time.sleep, page_limit: int | None = None) -> None:
        self.name = name
        self.api_url = api_url
        self.timeout = timeout
        self.retries = retries
        self.sleep = sleep
        self.page_limit = page_limit
        self._client: ccxt.Exchange | None = None
        self._markets_loaded = False

    # -- the interface ------------------------------------------------------------

    def markets(self, symbols: Sequence[str]) -> dict[str, MarketRules]:
        self._load_markets()
        return {symbol: self._rules(symbol) for symbol in symbols}

    def server_time(self) -> datetime:
        client = self.client
        if not client.has.get("fetchTime"):
            return datetime.now(UTC)  # the exchange does not say: the local clock is the best there is
        milliseconds = self._call("server time", client.fetch_time)
        return datetime.fromtimestamp(milliseconds / 1000, UTC)

    def closed_candles(self, symbol: str, timeframe: str, since: datetime, until: datetime | None = None
                       ) -> Iterator[Candle]:
        self._load_markets()
        self._market(symbol)
        step = self._step_ms(timeframe)
        last_open = _ms(self.server_time()) - step  # closed: open + step <= the server's time
        if until is not None:
            last_open = min(last_open, _ms(until) - 1)  # open_time < until
        limit = self.page_limit or self._max_limit()
        cursor = _ms(since)
        while cursor <= last_open:
            page = self._call(f"{symbol} {timeframe} candles", self.client.fetch_ohlcv, symbol, timeframe,
                              cursor, limit, {"until": last_open})
            fresh = [row for row in page if cursor <= row[0] <= last_open]
            for row in fresh:
                candle = self._candle(symbol, timeframe, row)
                if candle is not None:
                    yield candle
            if not fresh or len(page) < limit:
                return  # the exchange has nothing more up to now
            cursor = fresh[-1][0] + step

    # -- ccxt -------------------------------------------------------------------

    @property
    def client(self) -> ccxt.Exchange:
        if self._client is None:
            self._client = self._build_client()
        return self._client

    def _build_client(self) -> ccxt.Exchange:
        import ccxt  # here, not at the top: importing it takes about 0.25 s, which no other command pays

        if self.name not in ccxt.exchanges:
            raise ExchangeError(f"unknown exchange {self.name!r} (ccxt knows {len(ccxt.exchanges)}, e.g. binance)")
        client = getattr(ccxt, self.name)({"enableRateLimit": True, "timeout": int(self.timeout * 1000),
                                           "options": dict(SPOT_OPTIONS)})
        if self.api_url is not None:
            client.urls["api"] = _rebased(client.urls["api"], self.api_url.rstrip("/"))
        return client

    def _call(self, what: str, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`, retried on what may pass (network, 429, 5xx); ExchangeError otherwise."""
        import ccxt

        for attempt in range(self.retries + 1):
            try:
                return function(*args)
            except (ccxt.DDoSProtection, ccxt.NetworkError) as error:  # DDoSProtection: 429, 418
                if attempt == self.retries:
                    raise ExchangeError(f"{self.name} unreachable after {attempt + 1} tries ({what}): "
                                        f"{_short(error)}") from None
                wait = self._wait(error, attempt)
                log.warning("%s %s: %s; retrying in %.1fs", self.name, what, _short(error), wait)
                self.sleep(wait)
            except ccxt.BaseError as error:
                raise ExchangeError(f"{self.name} refused {what}: {_short(error)}") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _wait(self, error: Exception, attempt: int) -> float:
        import ccxt

        backoff = min(BACKOFF_FIRST * 2**attempt, BACKOFF_MAX)
        if not isinstance(error, ccxt.DDoSProtection):
            return backoff
        headers = self.client.last_response_headers or {}
        try:
            return min(max(float(headers.get("Retry-After", "")), 0.0), RETRY_AFTER_MAX)
        except ValueError:  # absent or an HTTP date: back off as for any other failure
            return backoff

    def _load_markets(self) -> None:
        if not self._markets_loaded:
            self._call("markets", self.client.load_markets)
            self._markets_loaded = True

    def _market(self, symbol: str) -> dict[str, Any]:
        market = self.client.markets.get(symbol)
        if market is None:
            raise ExchangeError(f"{self.name} has no spot market {symbol}")
        return market

    def _rules(self, symbol: str) -> MarketRules:
        market = self._market(symbol)
        precision, limits = market["precision"], market["limits"]
        return MarketRules(
            symbol=symbol, base=market["base"], quote=market["quote"],
            price_step=self._step(precision.get("price"), symbol, "price"),
            amount_step=self._step(precision.get("amount"), symbol, "amount"),
            min_amount=_decimal((limits.get("amount") or {}).get("min")),
            min_notional=_decimal((limits.get("cost") or {}).get("min")),
            taker_fee=_decimal(market.get("taker")),
        )

    def _step(self, precision: Any, symbol: str, what: str) -> Decimal:
        import ccxt

        value = _decimal(precision)
        if value is None:
            raise ExchangeError(f"{self.name} states no {what} precision for {symbol}")
        if self.client.precisionMode == ccxt.DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(value))
        if self.client.precisionMode == ccxt.SIGNIFICANT_DIGITS:
            raise ExchangeError(f"{self.name} states {what} precision in significant digits, which has no step")
        return value

    def _step_ms(self, timeframe: str) -> int:
        try:
            seconds = timeframe_seconds(timeframe)
        except InvalidValue as error:
            raise ExchangeError(str(error)) from None
        offered = self.client.timeframes or {}
        if timeframe not in offered:
            raise ExchangeError(f"{self.name} has no {timeframe} candles (it offers {', '.join(offered)})")
        return seconds * 1000

    def _max_limit(self) -> int:
        # ccxt has no per-exchange constant for it; binance's spot maximum is 1000, most others allow 500+.
        return 1000 if self.name.startswith("binance") else 500

    def _candle(self, symbol: str, timeframe: str, row: Sequence[Any]) -> Candle | None:
        open_ms, *values = row
        try:
            open_, high, low, close, volume = (Decimal(repr(value)) for value in values)
            return Candle(symbol=symbol, timeframe=timeframe, open_time=datetime.fromtimestamp(open_ms / 1000, UTC),
                          open=open_, high=high, low=low, close=close, volume=volume).check()
        except (InvalidValue, TypeError, ValueError) as error:  # a candle that cannot be traded on stays a gap
            log.warning("%s %s %s at %s: invalid candle dropped: %s", self.name, symbol, timeframe, open_ms, error)
            return None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _decimal(value: Any) -> Decimal | None:
    # Through repr: ccxt parses the exchange's text into floats; the shortest repr gives that text back.
    return None if value is None else Decimal(repr(value) if isinstance(value, float) else str(value)).normalize()


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:MESSAGE_CHARS]}{'...' if len(text) > MESSAGE_CHARS else ''}"


def _rebased(urls: Any, base: str) -> Any:
    """ccxt's `urls['api']` (a URL or a dict of them) with the main REST origin replaced by `base`."""
    if isinstance(urls, str):
        parts = urlsplit(urls)
        return base + urls[len(f"{parts.scheme}://{parts.netloc}"):]
    main = urls.get("public") or urls.get("rest") or next(v for v in urls.values() if isinstance(v, str))
    parts = urlsplit(main)
    origin = f"{parts.scheme}://{parts.netloc}"
    return {key: base + value[len(origin):] if isinstance(value, str) and value.startswith(origin) else value
            for key, value in urls.items()}

