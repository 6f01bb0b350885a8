"""Restarts from a state checkpoint: only the log after it is replayed, and the history goes on exactly as an
uninterrupted run's; `reproduce` flags a checkpoint that is not the state it recomputes, a restart refuses one
whose blob does not match its digest."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tradeledger.adapters.candlefiles import load_files
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.markets import data_settings
from tradeledger.adapters.release import VERSION
from tradeledger.adapters.services.checkpointing import Checkpoints, latest
from tradeledger.adapters.services.ports import EventLogPort, EventType, scan
from tradeledger.adapters.services.reproduce import reproduce
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle
from tradeledger.projections.fold import Recorded
from tradeledger.settings import Settings, load_settings
from tests.composing import composed
from tests.conftest import CANDLES

PAIRS = [CANDLES / "ETH_BTC-5m.csv", CANDLES / "LTC_BTC-5m.csv"]
# Limit entries and exits that rest, a stop-loss on every position, two pairs at once.
DECISIONS = {"predictor.name": "sma_cross", "exits.stoploss_percent": "2", "trading.entry_order": "limit",
             "trading.exit_order": "limit", "trading.limit_offset_bps": "10", "trading.max_open_trades": 2}
AFTER_CHECKPOINT = 150  # candles the killed agent records after its last checkpoint


class CountingLog:
    """The event log, counting the events its reads return: a whole-log read (no types) is what a replay walks."""

    def __init__(self, log: EventLogPort) -> None:
        self.log = log
        self.replayed = 0

    def read(self, after: int, limit: int, types: Sequence[EventType] | None = None) -> list[Recorded]:
        page = self.log.read(after, limit, types)
        self.replayed += len(page) if types is None else 0
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


def setup(tmp_path: Path, name: str, every: int, files: list[Path] = PAIRS) -> tuple[Settings, list[Candle]]:
    data = load_files(files)
    settings = load_settings(overrides={"database.url": f"sqlite:///{tmp_path / name}.sqlite",
                                        "agent.checkpoint_every": every, **DECISIONS}, environ={})
    return data_settings(settings, data.markets), data.candles


def session(root: Composition, settings: Settings, log: EventLogPort | None = None) -> TradingSession:
    log = log or root.feed
    checkpoints = Checkpoints(log, root.checkpoint_blobs, every=settings.agent.checkpoint_every, release=VERSION)
    return TradingSession(log, settings, root.trader_factory(settings), root.lease(), clock=root.clock,
                          checkpoints=checkpoints)


def run_all(root: Composition, settings: Settings, candles: list[Candle]) -> None:
    agent = session(root, settings)
    agent.resume()
    agent.start(("backtest",))
    agent.run_feed(candles, batch_size=50)
    agent.stop("backtest finished")


def history(log: EventLogPort) -> list[tuple[int, dict[str, Any]]]:
    """Every decision-bearing event, without log positions (the account's opening without its wall-clock time)."""
    return [(e.originator_version, {k: v for k, v in vars(e).items() if not isinstance(e, Account.Opened)
                                    or k != "timestamp"})
            for e in (r.event for r in scan(log)) if isinstance(e, Account.Event | Market.Event)]


def saved(log: EventLogPort) -> list[Recorded]:
    return list(scan(log, types=[AgentRun.StateSaved]))


def resting(agent: TradingSession) -> bool:
    """A position held under its stop-loss while a limit order rests, with both pairs traded."""
    assert agent.account is not None
    return (len(agent.trader.models) == 2 and bool(agent.trader.holdings)
            and any(o.limit_price is not None for o in agent.account.orders.values()))


def killed_after_a_checkpoint(root: Composition, settings: Settings, candles: list[Candle]) -> None:
    """Trade until a position and a resting limit order are open, checkpoint there, trade on, then die (no
    Stopped, no checkpoint on stop: the lease is simply gone)."""
    agent = session(root, settings)
    agent.resume()
    agent.start(("backtest",))
    checkpointed = None
    for index, candle in enumerate(candles):
        agent.tick(candle)
        agent.flush()
        if checkpointed is None and index > 4000 and resting(agent):
            agent.checkpoint()
            checkpointed = index
        if checkpointed is not None and index == checkpointed + AFTER_CHECKPOINT:
            break
    assert checkpointed is not None, "no moment with a position and a resting limit order"
    agent.lease.release()


def test_a_restart_replays_only_the_log_after_its_checkpoint_and_continues_identically(tmp_path: Path) -> None:
    clean_settings, candles = setup(tmp_path, "clean", every=400)
    with composed(clean_settings) as clean:
        run_all(clean, clean_settings, candles)
        uninterrupted = history(clean.feed)

    settings, _ = setup(tmp_path, "killed", every=400)
    with composed(settings) as root:
        killed_after_a_checkpoint(root, settings, candles)
        checkpoint = saved(root.feed)[-1]
        head = root.feed.head()
        restored = latest(root.feed, root.checkpoint_blobs, root.trader_factory(settings), VERSION)
        assert restored is not None and restored.covers == checkpoint.event.covers
        assert restored.trader.holdings and restored.trader.exit_rules.stoploss_percent is not None
        assert any(o.limit_price is not None for o in restored.account.orders.values())
        assert len(restored.markets) == 2

        counting = CountingLog(root.feed)
        agent = session(root, settings, counting)
        agent.resume()
        assert counting.replayed == head - checkpoint.event.covers, "only the events after the checkpoint"
        assert 0 < counting.replayed < head // 10
        agent.start(("backtest",))
        agent.run_feed(candles, batch_size=50)
        agent.stop("backtest finished")

        resumed = history(root.feed)
        assert len(resumed) == len(uninterrupted)
        assert resumed == uninterrupted, "the resumed history differs from the uninterrupted one"
        report = reproduce(root.feed, root.recorded_trader_factory(), blobs=root.checkpoint_blobs)
        assert report.ok, report.divergence
        assert len(saved(root.feed)) > 10


def corrupt(root: Composition, position: int) -> None:
    with root.engine.begin() as conn:
        blob = conn.execute(sa.text("SELECT state FROM state_checkpoints WHERE position = :p"),
                            {"p": position}).scalar_one()
        changed = bytes(blob[:-20]) + bytes(b ^ 0xFF for b in blob[-20:-19]) + bytes(blob[-19:])
        conn.execute(sa.text("UPDATE state_checkpoints SET state = :s WHERE position = :p"),
                     {"s": changed, "p": position})


def test_reproduce_flags_a_corrupted_checkpoint_and_a_restart_refuses_it(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    settings, candles = setup(tmp_path, "store", every=1000, files=PAIRS[:1])
    with composed(settings) as root:
        run_all(root, settings, candles)
        checkpoints = saved(root.feed)
        assert len(checkpoints) == 6  # every 1000 candles of 5760, and on the clean stop
        assert reproduce(root.feed, root.recorded_trader_factory(), blobs=root.checkpoint_blobs).ok

        newest, previous = checkpoints[-1], checkpoints[-2]
        corrupt(root, newest.position)
        report = reproduce(root.feed, root.recorded_trader_factory(), blobs=root.checkpoint_blobs, every=True)
        assert not report.ok and report.counts == {"checkpoint": 1}
        assert report.divergence is not None and report.divergence.position == newest.position
        assert f"the checkpoint at position {newest.position} is wrong: its blob does not match" \
            in report.divergence.message

        with caplog.at_level(logging.WARNING):
            restored = latest(root.feed, root.checkpoint_blobs, root.trader_factory(settings), VERSION)
        assert restored is not None and restored.covers == previous.event.covers, "the one before it"
        assert f"refusing the checkpoint at position {newest.position}: its blob does not match" in caplog.text

        # A checkpoint whose blob and digests agree, of a state the history did not lead to.
        agent = session(root, settings)
        agent.resume()
        agent.start(("backtest",))
        agent.trader.risk.losing_streak += 1
        assert agent.checkpoints is not None and agent.run is not None and agent.account is not None
        agent.checkpoints.save(agent.run, agent.covered, agent.inbox.after, agent.trader, agent.account,
                               list(agent.markets.values()), at=root.clock())
        agent.stop("done")
        forged = saved(root.feed)[-1]
        report = reproduce(root.feed, root.recorded_trader_factory(), blobs=root.checkpoint_blobs, every=True)
        assert report.counts == {"checkpoint": 2}
        wrong = [d for d in report.divergences if d.position == forged.position]
        assert len(wrong) == 1 and "is not the state the replay recomputed" in wrong[0].message


def test_a_backtest_checkpoints_once_on_its_clean_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`backtest` is run again rather than resumed: whatever `agent.checkpoint_every` says, it checkpoints only
    on its clean stop, and that checkpoint covers the whole run (an agent continuing the store starts there)."""
    from tradeledger.adapters.cli import main

    url = f"sqlite:///{tmp_path / 'backtest.sqlite'}"
    monkeypatch.setenv("TRADELEDGER_AGENT__CHECKPOINT_EVERY", "1000")  # a live agent: 5 on the way
    assert main(["--database", url, "backtest", "--data", str(PAIRS[0]), "--predictor", "sma_cross",
                 "--batch", "500"]) == 0
    with composed(load_settings(overrides={"database.url": url}, environ={})) as root:
        checkpoints = saved(root.feed)
        candles = list(scan(root.feed, types=[Market.CandleClosed]))
        assert [c.event.candles for c in checkpoints] == [len(candles)] == [5760]
        assert checkpoints[0].event.covers >= candles[-1].position
