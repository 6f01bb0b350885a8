"""The ccxt adapter with the REAL ccxt binance client against the local fake exchange (real sockets)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.fakeexchange import CANDLES, START, Drop, FakeExchange, Hang, Rules, ServerError, TooMany
from tradeledger.adapters.exchange import Exchange, ExchangeError, MarketRules, _rebased

STEP = timedelta(minutes=5)
SPOT_PATHS = {"/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/klines"}


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange({"ETH/BTC": "ETH_BTC-5m.csv", "LTC/BTC": "LTC_BTC-5m.csv"},
                      rules={"LTC/BTC": Rules(tick_size="0.00000100", step_size="0.01000000",
                                              min_qty="0.01000000", min_notional="0.00100000")}) as fake:
        yield fake


def client(fake: FakeExchange, waits: list[float] | None = None, **options: object) -> Exchange:
    return Exchange("binance", api_url=fake.url, sleep=(waits if waits is not None else []).append, **options)


def file_rows(name: str, count: int) -> list[tuple[Decimal, ...]]:
    with (CANDLES / name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [tuple(Decimal(r[k]) for k in ("open", "high", "low", "close", "volume")) for r in rows]


def test_markets_give_precision_minimums_and_fee_and_only_spot_endpoints_are_called(fake: FakeExchange) -> None:
    rules = client(fake).markets(["ETH/BTC", "LTC/BTC"])
    assert rules["LTC/BTC"] == MarketRules(
        symbol="LTC/BTC", base="LTC", quote="BTC", price_step=Decimal("0.000001"), amount_step=Decimal("0.01"),
        min_amount=Decimal("0.01"), min_notional=Decimal("0.001"), taker_fee=Decimal("0.001"))
    assert rules["ETH/BTC"].amount_step == Decimal("0.001")
    assert set(fake.paths()) <= SPOT_PATHS
    with pytest.raises(ExchangeError, match="binance has no spot market DOGE/BTC"):
        client(fake).markets(["DOGE/BTC"])


def test_candles_come_page_by_page_in_order_exactly_as_the_exchange_sent_them(fake: FakeExchange) -> None:
    fake.open_candles("ETH/BTC", 430)
    candles = list(client(fake, page_limit=50).closed_candles("ETH/BTC", "5m", START))
    assert [c.open_time for c in candles] == [START + i * STEP for i in range(430)]  # not the one in progress
    assert [(c.open, c.high, c.low, c.close, c.volume) for c in candles] == file_rows("ETH_BTC-5m.csv", 430)
    assert fake.count("/api/v3/klines") == 9  # 8 full pages and the short last one
    assert set(fake.paths()) <= SPOT_PATHS


def test_only_candles_closed_by_the_servers_clock_and_before_until_are_given(fake: FakeExchange) -> None:
    fake.open_candles("ETH/BTC", 20)
    fake.clock.advance(STEP / 2)  # the 21st candle is half-way
    exchange = client(fake)
    assert len(list(exchange.closed_candles("ETH/BTC", "5m", START))) == 20
    until = START + 7 * STEP
    assert [c.open_time for c in exchange.closed_candles("ETH/BTC", "5m", START + 2 * STEP, until)] == [
        START + i * STEP for i in range(2, 7)]
    assert list(exchange.closed_candles("ETH/BTC", "5m", START + 20 * STEP)) == []
    assert exchange.server_time() == START + 20 * STEP + STEP / 2


@pytest.mark.parametrize(("failure", "wait"), [(TooMany(retry_after=7), 7.0), (ServerError(), 0.5),
                                               (Drop(), 0.5), (Hang(seconds=5), 0.5)])
def test_each_failure_is_retried_and_the_candles_arrive_complete(fake: FakeExchange, failure: object,
                                                                 wait: float) -> None:
    fake.open_candles("ETH/BTC", 120)
    waits: list[float] = []
    exchange = client(fake, waits, page_limit=50, timeout=0.3)
    exchange.markets(["ETH/BTC"])
    fake.fail_next(failure)  # the first klines request
    candles = list(exchange.closed_candles("ETH/BTC", "5m", START))
    assert [c.open_time for c in candles] == [START + i * STEP for i in range(120)]
    assert waits == [wait]  # Retry-After honoured; otherwise the first backoff
    assert fake.count("/api/v3/klines", type(failure).__name__) == 1


def test_repeated_failures_back_off_longer_then_give_up_in_one_line(fake: FakeExchange) -> None:
    fake.open_candles("ETH/BTC", 10)
    waits: list[float] = []
    exchange = client(fake, waits, retries=3)
    exchange.markets(["ETH/BTC"])
    fake.fail_next(ServerError(), ServerError(), Drop(), ServerError())
    with pytest.raises(ExchangeError) as raised:
        list(exchange.closed_candles("ETH/BTC", "5m", START))
    assert waits == [0.5, 1.0, 2.0]
    message = str(raised.value)
    assert message.startswith("binance unreachable after 4 tries (ETH/BTC 5m candles): ExchangeNotAvailable")
    assert "\n" not in message


def test_candles_the_exchange_never_returns_stay_missing(fake: FakeExchange) -> None:
    fake.open_candles("ETH/BTC", 200)
    fake.missing = {START + 3 * STEP, START + 49 * STEP, START + 50 * STEP, START + 51 * STEP}
    times = [c.open_time for c in client(fake, page_limit=50).closed_candles("ETH/BTC", "5m", START)]
    assert times == [START + i * STEP for i in range(200) if START + i * STEP not in fake.missing]


def test_an_unreachable_exchange_and_bad_names_fail_in_one_line(fake: FakeExchange) -> None:
    url = fake.url
    fake.stop()
    with pytest.raises(ExchangeError, match="binance unreachable after 2 tries .markets.: NetworkError"):
        Exchange("binance", api_url=url, retries=1, sleep=lambda _s: None).markets(["ETH/BTC"])
    with pytest.raises(ExchangeError, match="unknown exchange 'nope'"):
        Exchange("nope").markets(["ETH/BTC"])
    with pytest.raises(ExchangeError, match="has no 7m candles"):
        Exchange("binance", api_url=url)._step_ms("7m")  # checked before any request


def test_api_url_replaces_the_origin_of_the_rest_urls_only() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "sapi": "https://api.binance.com/sapi/v1",
            "fapiPublic": "https://fapi.binance.com/fapi/v1"}
    assert _rebased(urls, "http://127.0.0.1:9") == {"public": "http://127.0.0.1:9/api/v3",
                                                    "sapi": "http://127.0.0.1:9/sapi/v1",
                                                    "fapiPublic": "https://fapi.binance.com/fapi/v1"}
    assert _rebased("https://api.kraken.com/0", "http://h") == "http://h/0"


def test_constructing_needs_no_network_and_does_not_import_ccxt() -> None:
    exchange = Exchange("binance", api_url="http://127.0.0.1:1")
    assert exchange._client is None
