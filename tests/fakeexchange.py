"""A local fake of Binance's spot REST API, so the real ccxt client is tested offline.

It serves, on 127.0.0.1 (an ephemeral port, a real socket, a thread of the test process):
`/api/v3/time`, `/api/v3/exchangeInfo` and `/api/v3/klines` in Binance's shapes, which is
all ccxt's binance client calls for spot market data with the adapter's options. Any other
path answers 404 and is recorded, so a test sees an unexpected call.

Candles come from `../shared/data/candles/*.csv`, re-based so the first one opens at
`start` (default 2024-01-01 UTC), and exist once they open on the test clock
(`ExchangeClock`: `advance()`, or a rate of market seconds per real second). Like Binance,
klines include the candle still in progress; here it is served as it looks at its first
trade (open = high = low = close, volume 0), so a client that records it is caught.

Failures on demand (`fail_next`): `Hang` (answer nothing until the client gives up),
`TooMany` (429 with Retry-After), `ServerError` (500), `Drop` (close the connection without
answering); and `missing`: open times never returned, as a gap at the exchange.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles"
START = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_LIMIT, MAX_LIMIT = 500, 1000
TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}


class ExchangeClock:
    """The fake exchange's "now": set, advanced by the test, and optionally running at `rate`
    market seconds per real second (0: it moves only when advanced; `rate=300 * N`: N 5m candles
    close per real second)."""

    def __init__(self, now: datetime = START, *, rate: float = 0.0) -> None:
        self._base = now
        self._rate = rate
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._base + timedelta(seconds=(time.monotonic() - self._since) * self._rate)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._base += delta

    def set(self, now: datetime, *, rate: float | None = None) -> None:
        with self._lock:
            self._base, self._since = now, time.monotonic()
            if rate is not None:
                self._rate = rate


class Rules(NamedTuple):
    """One symbol's filters, as Binance states them."""

    tick_size: str = "0.00000100"
    step_size: str = "0.00100000"
    min_qty: str = "0.00100000"
    min_notional: str = "0.00010000"


class Hang(NamedTuple):
    """Answer nothing for `seconds` (the client's timeout should fire first), then close."""

    seconds: float = 5.0


class TooMany(NamedTuple):
    retry_after: int = 1


class ServerError(NamedTuple):
    status: int = 500


class Drop(NamedTuple):
    """Close the connection without answering."""


Failure = Hang | TooMany | ServerError | Drop


class Row(NamedTuple):
    open_ms: int
    values: tuple[str, str, str, str, str]  # open, high, low, close, volume as the file writes them


class Series:
    """One symbol's candles, re-based to open from `start`."""

    def __init__(self, path: Path, start: datetime, timeframe: str) -> None:
        with path.open(newline="") as handle:
            records = list(csv.DictReader(handle))
        first = datetime.fromisoformat(records[0]["date"])
        shift = start - first
        self.timeframe = timeframe
        self.step_ms = TIMEFRAMES[timeframe] * 1000
        self.rows = [Row(_ms(datetime.fromisoformat(r["date"]) + shift),
                         (r["open"], r["high"], r["low"], r["close"], r["volume"])) for r in records]
        self.times = [row.open_ms for row in self.rows]

    def at(self, open_time: datetime) -> Row:
        return self.rows[self.times.index(_ms(open_time))]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Request(NamedTuple):
    path: str
    query: dict[str, str]
    outcome: str  # "ok", a failure's name, or the error status


class FakeExchange:
    """`symbols`: unified symbol -> CSV file name in `../shared/data/candles` (its timeframe is the suffix)."""

    def __init__(self, symbols: dict[str, str] | None = None, *, clock: ExchangeClock | None = None,
                 start: datetime = START, rules: dict[str, Rules] | None = None) -> None:
        symbols = symbols or {"ETH/BTC": "ETH_BTC-5m.csv"}
        self.clock = clock or ExchangeClock(start)
        self.series = {symbol: Series(CANDLES / name, start, name.rsplit("-", 1)[1].removesuffix(".csv"))
                       for symbol, name in symbols.items()}
        self.rules = {symbol: (rules or {}).get(symbol, Rules()) for symbol in symbols}
        self.missing: set[datetime] = set()  # open times never returned (any symbol)
        self.requests: list[Request] = []
        self.script: deque[Failure] = deque()
        self.fail_paths: tuple[str, ...] = ()
        self.good_first = 0
        self.lock = threading.Lock()
        self.released = threading.Event()  # set on stop: hanging handlers give up
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="fake-exchange",
                                       daemon=True)  # polls for shutdown every 0.05 s: tests end quickly

    @property
    def url(self) -> str:
        """The REST base URL (what `exchange.api_url` takes)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeExchange:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    # -- what tests do --------------------------------------------------------------

    def fail_next(self, *failures: Failure, paths: tuple[str, ...] = ("/api/v3/klines",), after: int = 0) -> None:
        """After `after` more good answers, the next requests to `paths` fail like this, one per request."""
        with self.lock:
            self.script.extend(failures)
            self.fail_paths = paths
            self.good_first = after

    def open_candles(self, symbol: str, count: int) -> None:
        """Move the clock so exactly `count` candles of `symbol` have closed (the next one just opened)."""
        series = self.series[symbol]
        self.clock.set(datetime.fromtimestamp(series.times[0] / 1000, UTC)
                       + timedelta(milliseconds=series.step_ms * count))

    def count(self, path: str, outcome: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.path == path and outcome in (None, r.outcome))

    def paths(self) -> Counter[str]:
        with self.lock:
            return Counter(r.path for r in self.requests)

    # -- the API ----------------------------------------------------------------

    def record(self, path: str, query: dict[str, str], outcome: str) -> None:
        with self.lock:
            self.requests.append(Request(path, query, outcome))

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str], str]:
        """(status, JSON body, extra headers, outcome); body None with status 0: drop, or hang first."""
        with self.lock:
            failure = None
            if self.script and path in self.fail_paths:
                if self.good_first:
                    self.good_first -= 1
                else:
                    failure = self.script.popleft()
        match failure:
            case Hang(seconds):
                self.record(path, query, "Hang")  # now: a test waits for it while the client still waits
                self.released.wait(seconds)
                return 0, None, {}, "Hang"
            case TooMany(retry_after):
                return 429, {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight "
                             "per 1 MINUTE."}, {"Retry-After": str(retry_after)}, "TooMany"
            case ServerError(status):
                return status, "Internal Server Error", {}, "ServerError"
            case Drop():
                return 0, None, {}, "Drop"
        now = _ms(self.clock.now())
        if path == "/api/v3/time":
            return 200, {"serverTime": now}, {}, "ok"
        if path == "/api/v3/exchangeInfo":
            return 200, self.exchange_info(now), {}, "ok"
        if path == "/api/v3/klines":
            return self.klines(query, now)
        return 404, {"code": -1, "msg": f"no such path {path}"}, {}, "404"

    def exchange_info(self, now: int) -> dict[str, Any]:
        return {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [],
                "symbols": [self.symbol_info(symbol) for symbol in self.series]}

    def symbol_info(self, symbol: str) -> dict[str, Any]:
        base, quote = symbol.split("/")
        rules = self.rules[symbol]
        return {
            "symbol": base + quote, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
            "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": [],
            "permissionSets": [["SPOT"]],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": rules.tick_size, "maxPrice": "1000.00000000",
                 "tickSize": rules.tick_size},
                {"filterType": "LOT_SIZE", "minQty": rules.min_qty, "maxQty": "100000.00000000",
                 "stepSize": rules.step_size},
                {"filterType": "NOTIONAL", "minNotional": rules.min_notional, "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
        }

    def klines(self, query: dict[str, str], now: int) -> tuple[int, Any, dict[str, str], str]:
        series = next((s for symbol, s in self.series.items() if symbol.replace("/", "") == query.get("symbol")),
                      None)
        if series is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}, {}, "400"
        if query.get("interval") != series.timeframe:
            return 400, {"code": -1120, "msg": "Invalid interval."}, {}, "400"
        limit = min(int(query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
        missing = {_ms(moment) for moment in self.missing}
        end = min(int(query.get("endTime", now)), now)
        upto = bisect_right(series.times, end)
        if "startTime" in query:
            rows = series.rows[bisect_left(series.times, int(query["startTime"])):upto]
            rows = [row for row in rows if row.open_ms not in missing][:limit]
        else:  # the latest ones
            rows = [row for row in series.rows[:upto] if row.open_ms not in missing][-limit:]
        return 200, [self.kline(row, series.step_ms, now) for row in rows], {}, "ok"

    @staticmethod
    def kline(row: Row, step_ms: int, now: int) -> list[Any]:
        close_ms = row.open_ms + step_ms
        open_, high, low, close, volume = row.values if close_ms <= now else (row.values[0],) * 4 + ("0",)
        return [row.open_ms, open_, high, low, close, volume, close_ms - 1, "0", 0, "0", "0", "0"]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as requests' session uses it

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                status, body, headers, outcome = fake.answer(parts.path, query)
                if outcome != "Hang":
                    fake.record(parts.path, query, outcome)
                if status == 0:
                    self.close_connection = True
                    return
                data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/html")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

        return Handler
