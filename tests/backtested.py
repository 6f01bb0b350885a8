"""A real backtest store for the export and statement tests: real ETH/BTC candles, risk halts and rejections, and
an operator's halt and resume whose reason is markup (so the statement's escaping is tested on recorded text)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from datetime import datetime, timedelta

from tradeledger.adapters.cli import main
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services import backtest
from tradeledger.settings import load_settings
from tests.agents import command
from tests.composing import composed
from tests.conftest import CANDLES

ETH = CANDLES / "ETH_BTC-5m.csv"
MARKUP_REASON = '<script>alert("x")</script> & <b>audit</b>'


def backtest_store(url: str, candles: int) -> None:
    """`candles` ETH/BTC 5m candles backtested with sma_cross, then an operator halt and resume after the last one."""
    settings = load_settings(overrides={"database.url": url, "predictor.name": "sma_cross"}, environ={})
    series = load_candles(ETH).candles[:candles]
    with composed(settings) as container:
        backtest.run(container.agent(settings), container.feed, series, batch_size=500)
        after = series[-1].open_time + timedelta(minutes=10)
        for action, at in (("halt", after), ("resume", after + timedelta(minutes=5))):
            outcome = command(container.feed, url, action, reason=MARKUP_REASON, by="auditor", at=at)
            assert outcome.status == "applied", outcome


def cli(url: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--database", url, *args])
    return code, out.getvalue()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
