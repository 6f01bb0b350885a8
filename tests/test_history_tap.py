"""The backtest's summary is folded as the events are appended (services.history_tap), not read back from the
log, and equals the summary read back: on a fresh store, with checkpoints appended around the session's own
appends (read from the log to fill the gap), and on a store that already holds an earlier run (read after the
run, not before its first candle)."""

from __future__ import annotations

from typing import Any

import msgspec

from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services import backtest
from tradeledger.settings import load_settings
from tests.composing import composed
from tests.conftest import CANDLES

ETH = load_candles(CANDLES / "ETH_BTC-5m.csv").candles


class CountingFeed:
    """The feed, counting the events read through it."""

    def __init__(self, feed: Any) -> None:
        self.feed, self.events = feed, 0

    def read(self, after: int, limit: int, types: Any = None) -> list[Any]:
        page = self.feed.read(after, limit, types)
        self.events += len(page)
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self.feed, name)


def backtested(url: str, runs: list[int], **overrides: Any) -> tuple[list[int], bytes, bytes]:
    """Backtests of ETH's first `runs[i]` candles one after another on one store: the events each run read from
    the log, and the last run's summary as run gave it and as read back (JSON)."""
    settings = load_settings(overrides={"database.url": url, "predictor.name": "sma_cross", **overrides}, environ={})
    reads = []
    with composed(settings) as container:
        for candles in runs:
            feed = CountingFeed(container.feed)
            result = backtest.run(container.agent(settings), feed, ETH[:candles], batch_size=100)
            reads.append(feed.events)
        read_back = backtest.summarise(container.feed, settings.trading.account, result.candles, result.seconds)
        return reads, msgspec.json.encode(result), msgspec.json.encode(read_back)


def test_the_summary_is_folded_at_append_time_and_equals_the_one_read_back(tmp_path: Any) -> None:
    reads, summary, read_back = backtested(f"sqlite:///{tmp_path}/a.sqlite", [3000], **{"agent.checkpoint_every": 0})
    assert summary == read_back
    assert b'"trades":0' not in summary
    assert reads[0] <= 5  # the stop's checkpoint, not the ~6,000 events folded as they were appended


def test_events_appended_around_the_session_are_read_from_the_log(tmp_path: Any) -> None:
    # Checkpoints (AgentRun.StateSaved) are appended by services.checkpointing, not through the session's log.
    reads, summary, read_back = backtested(f"sqlite:///{tmp_path}/b.sqlite", [3000], **{"agent.checkpoint_every": 500})
    assert summary == read_back
    assert 5 < reads[0] < 20  # the checkpoints only


def test_a_run_on_a_store_with_history_folds_that_history_first(tmp_path: Any) -> None:
    reads, summary, read_back = backtested(f"sqlite:///{tmp_path}/c.sqlite", [1500, 3000])
    assert summary == read_back
    assert reads[1] > 3000  # the first run's events (candles, signals, fills), read once


def test_a_run_on_a_store_with_history_trades_before_it_reads_that_history(tmp_path: Any) -> None:
    """A restart: the earlier history is read when the summary asks for it, not between the start and the
    first candle (which it made as slow as a full replay)."""
    settings = load_settings(overrides={"database.url": f"sqlite:///{tmp_path}/d.sqlite",
                                        "predictor.name": "sma_cross"}, environ={})
    with composed(settings) as container:
        backtest.run(container.agent(settings), container.feed, ETH[:1500], batch_size=100)
        feed, read_before_each_append = CountingFeed(container.feed), []
        append = container.feed.append_positions

        def counted(events: Any) -> Any:
            read_before_each_append.append(feed.events)
            return append(events)

        container.feed.append_positions = counted  # type: ignore[method-assign]
        result = backtest.run(container.agent(settings), feed, ETH[:3000], batch_size=100)
        read_back = backtest.summarise(container.feed, settings.trading.account, result.candles, result.seconds)
    assert len(read_before_each_append) > 10 and set(read_before_each_append) == {0}
    assert feed.events > 3000, "the summary read the whole history once, after the run"
    assert msgspec.json.encode(result) == msgspec.json.encode(read_back)
