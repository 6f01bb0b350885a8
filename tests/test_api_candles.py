"""`GET /api/candles/{symbol}`: a market's newest candles from the log, over the real app on a real socket.

The answer must be the store's own CandleClosed events of that market (the newest `limit`, oldest
first), also when `limit` reaches across several pages of the market's stream (candles and signals
interleave there); an unknown market is a 404 naming it. The `mark` message carries the whole candle.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from tradeledger.domain.market import Market
from tests.apisupport import api_settings, events, serving, trade
from tests.composing import composed

CANDLES = 1200  # the market's stream holds 2,400 events: a limit of 1000 reads across pages
SYMBOL = "ETH/BTC"  # what tests.apisupport.trade trades
Served = tuple[str, list[Market.CandleClosed]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path_factory.mktemp('candles') / 'ledger.sqlite'}"
    with composed(api_settings(url)) as container:
        trade(container, CANDLES, batch_size=200)
        with serving(container) as base:
            yield base, events(container, Market.CandleClosed)


def shape(e: Market.CandleClosed) -> dict[str, str]:
    return {"open_time": e.open_time.isoformat().replace("+00:00", "Z"), "open": str(e.open), "high": str(e.high),
            "low": str(e.low), "close": str(e.close)}


@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_the_newest_candles_of_a_market_oldest_first(served: Served, limit: int) -> None:
    base, recorded = served
    answer = httpx.get(f"{base}/api/candles/ETH-BTC", params={"limit": limit}).json()
    assert (answer["symbol"], answer["timeframe"]) == (SYMBOL, "5m")
    assert [{k: c[k] for k in ("open_time", "open", "high", "low", "close")} for c in answer["candles"]] == \
           [shape(e) for e in recorded[-limit:]]
    assert all(Decimal(c["low"]) <= Decimal(c["close"]) <= Decimal(c["high"]) for c in answer["candles"])


def test_an_unknown_market_is_a_404_naming_it(served: Served) -> None:
    base, _ = served
    response = httpx.get(f"{base}/api/candles/NOPE-BTC")
    assert response.status_code == 404 and "NOPE-BTC" in response.json()["detail"]
    assert httpx.get(f"{base}/api/candles/ETH-BTC", params={"timeframe": "3d"}).status_code == 404


def test_a_mark_message_carries_the_whole_candle(served: Served) -> None:
    base, recorded = served
    page = httpx.get(f"{base}/api/updates", params={"after": 0, "limit": 1000, "topic": "portfolio"}).json()
    mark = next(m for m in page["messages"] if m["type"] == "mark")
    first = next(e for e in recorded if e.open_time.isoformat().replace("+00:00", "Z") == mark["data"]["open_time"])
    assert {k: mark["data"][k] for k in ("open", "high", "low")} == {"open": str(first.open), "high": str(first.high),
                                                                     "low": str(first.low)}
    assert mark["data"]["price"] == str(first.close)
