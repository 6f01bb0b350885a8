"""`download` with the real ccxt client against the fake exchange, then `backtest --data` on what it wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fakeexchange import START, FakeExchange, ServerError
from tradeledger.adapters.cli import main
from tradeledger.adapters.exchange import Exchange, ExchangeError
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.download import download

STEP = timedelta(minutes=5)
KLINES = "/api/v3/klines"


@pytest.fixture
def fake() -> Iterator[FakeExchange]:
    with FakeExchange({"ETH/BTC": "ETH_BTC-5m.csv", "LTC/BTC": "LTC_BTC-5m.csv"}) as fake:
        fake.open_candles("ETH/BTC", 600)
        yield fake


def fetch(fake: FakeExchange, out: Path, **options: object) -> list:
    exchange = Exchange("binance", api_url=fake.url, sleep=lambda _s: None, **options)
    return download(exchange, ["ETH/BTC", "LTC/BTC"], "5m", since=START, until=None, out=out)


def test_a_second_download_fetches_nothing_and_leaves_the_same_files(fake: FakeExchange, tmp_path: Path) -> None:
    first = fetch(fake, tmp_path)
    files = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert sorted(files) == ["ETH_BTC-5m.parquet", "LTC_BTC-5m.parquet"]
    assert [(f.candles, f.fetched) for f in first] == [(600, 600), (600, 600)]
    before = fake.count(KLINES)
    second = fetch(fake, tmp_path)
    assert fake.count(KLINES) == before  # nothing fetched
    assert [(f.candles, f.fetched) for f in second] == [(600, 0), (600, 0)]
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == files


def test_a_resumed_download_fetches_only_the_new_candles_and_equals_a_fresh_one(fake: FakeExchange,
                                                                                tmp_path: Path) -> None:
    fetch(fake, tmp_path / "resumed")
    fake.open_candles("ETH/BTC", 650)
    fake.requests.clear()
    resumed = fetch(fake, tmp_path / "resumed")
    assert [f.fetched for f in resumed] == [50, 50]
    assert {int(r.query["startTime"]) for r in fake.requests if r.path == KLINES} == {
        int((START + 600 * STEP).timestamp() * 1000)}
    fetch(fake, tmp_path / "fresh")
    for name in ("ETH_BTC-5m.parquet", "LTC_BTC-5m.parquet"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_what_came_before_a_failure_is_kept_and_the_next_run_goes_on(fake: FakeExchange, tmp_path: Path) -> None:
    exchange = Exchange("binance", api_url=fake.url, sleep=lambda _s: None, retries=0, page_limit=200)
    fake.fail_next(ServerError(), after=1)  # the second page
    with pytest.raises(ExchangeError, match="unreachable after 1 tries"):
        download(exchange, ["ETH/BTC"], "5m", since=START, until=None, out=tmp_path)
    assert len(load_candles(tmp_path / "ETH_BTC-5m.parquet").candles) == 200
    [done] = download(exchange, ["ETH/BTC"], "5m", since=START, until=None, out=tmp_path)
    assert (done.candles, done.fetched) == (600, 400)


def test_download_reports_the_gaps_then_backtest_reads_the_file(fake: FakeExchange, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fake.missing = {START + 100 * STEP, START + 101 * STEP}
    out, url = tmp_path / "data", f"sqlite:///{tmp_path / 'store.sqlite'}"
    # (--database: to see that download opens no store)
    assert main(["--database", url, "download", "--exchange", "binance", "--api-url", fake.url, "--symbols", "ETH/BTC",
                 "--timeframe", "5m", "--since", "2024-01-01", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "598 candles" in printed and "2 missing at the exchange" in printed
    assert "2 missing after 2024-01-01T08:15:00+00:00" in printed
    assert "amount_step 0.001, price_step 0.000001, min_amount 0.001, min_notional 0.0001, taker fee 0.001" in printed
    assert not (tmp_path / "store.sqlite").exists()  # download opens no store
    data = load_candles(out / "ETH_BTC-5m.parquet")
    assert (data.symbol, data.timeframe, len(data.candles), data.report.missing_candles) == ("ETH/BTC", "5m", 598, 2)
    assert main(["--database", url, "backtest", "--data", str(out / "ETH_BTC-5m.parquet"),
                 "--predictor", "sma_cross", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["candles"] == 598 and result["data"]["gaps"][0]["missing_count"] == 2


def test_download_errors_are_one_line_with_exit_2(fake: FakeExchange, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    common = ["download", "--api-url", fake.url, "--since", "2024-01-01", "--out", str(tmp_path / "d")]
    assert main([*common, "--exchange", "binance", "--symbols", "DOGE/BTC"]) == 2
    assert main([*common, "--exchange", "nope"]) == 2
    assert main([*common, "--exchange", "binance", "--until", "2023-12-01"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "tradeledger download: binance has no spot market DOGE/BTC"
    assert lines[1].startswith("tradeledger: invalid settings") and "exchange.name" in lines[2]
    assert lines[3] == "tradeledger download: --until must be after --since"
