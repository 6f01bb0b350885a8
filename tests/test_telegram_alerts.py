"""Alerts end to end with the real client: every kind reaches every allowed chat exactly once.

The bot runs as `tradeledger run` embeds it, against the fake Bot API; a
projection runner keeps the read models current, as `run` or `project` does.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradeledger.adapters.services import readmodels
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.marketdata import load_candles
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.ids import account_id
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, Side
from tradeledger.projections.alerts import ALERT_STATE, ALERTS, AlertKind, AlertsFold, signed
from tradeledger.projections.fold import Fold, EventHandler, Projection, apply_all
from tradeledger.projections.portfolio import PortfolioFold
from tradeledger.projections.portfolio_rows import TRADES
from tradeledger.projections.rows import MemoryTables
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.settings import load_settings
from tests import agents
from tests.conftest import CANDLES
from tests.fakebotapi import FakeBotApi, wait_until
from tests.telegram_support import (  # noqa: F401 - fixtures
    CHAT,
    OTHER_CHAT,
    container,
    fake,
    outbox_rows,
    running_bot,
    running_projections,
)

DAY = datetime(2024, 3, 1, tzinfo=timezone.utc)
KINDS: tuple[AlertKind, ...] = AlertKind.__args__  # type: ignore[attr-defined]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def candle(open_time: datetime, close: str) -> Candle:
    price = Decimal(close)
    return Candle(symbol="ETH/BTC", timeframe="5m", open_time=open_time, open=price, high=price, low=price,
                  close=price, volume=Decimal(1))


class Exploding(Fold):
    """A read model whose fold fails on the first gateway start: a projection stuck on an error."""

    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {Gateway.Started: self.explode}

    def explode(self, _event: Any, _position: int) -> None:
        raise RuntimeError("cannot fold this")


def kinds_sent(container: Composition, chat: int) -> Counter[str]:
    return Counter(r.kind for r in outbox_rows(container) if r.chat_id == chat and r.status == "sent")


def delivered(container: Composition, kind: str) -> bool:
    return all(kinds_sent(container, chat)[kind] for chat in (CHAT, OTHER_CHAT))


def trade_round_trip(container: Composition) -> None:
    """Buy 2 at 0.05, sell 2 at 0.055 (fees 0.0001 each), across a UTC midnight."""
    account = Account.open("paper", "BTC", Decimal(1), at=utcnow())
    market = Market.list("ETH/BTC", "5m", at=DAY)
    market.close_candle(candle(DAY - timedelta(minutes=10), "0.05"))
    container.store.save(account, market)
    buy = account.place_order("ETH/BTC", Side.BUY, Decimal(2), at=utcnow(), signal_ref="s", reason="entry")
    account.fill_order(buy, price=Decimal("0.05"), quantity=Decimal(2), fee=Decimal("0.0001"), at=utcnow())
    market.close_candle(candle(DAY - timedelta(minutes=5), "0.055"))
    container.store.save(account, market)
    sell = account.place_order("ETH/BTC", Side.SELL, Decimal(2), at=utcnow(), signal_ref="s", reason="exit")
    account.fill_order(sell, price=Decimal("0.055"), quantity=Decimal(2), fee=Decimal("0.0001"), at=utcnow())
    market.close_candle(candle(DAY, "0.055"))  # the first candle of the next UTC day closes the day
    account.reject_order("ETH/BTC", Side.BUY, rule="insufficient_cash", reason="cash buys nothing", at=utcnow())
    container.store.save(account, market)


def test_every_alert_kind_reaches_every_allowed_chat_exactly_once(container: Composition, fake: FakeBotApi) -> None:
    store = container.store
    with running_projections(container), running_bot(container, fake):
        trade_round_trip(container)
        account: Account = store.repository.get(account_id("paper"))
        account.halt_trading(rule="max_drawdown_percent", reason="drawdown 21.5% reached the limit 20",
                             metrics={"drawdown_percent": "21.5", "limit": "20"}, by="risk", at=utcnow())
        store.save(account)
        container.control.issue("resume", reason="looked into it", by="api", channel="test", at=utcnow())

        run = AgentRun.start(key="run-1", version="1", host="h", pid=1, config_digest="d", components=("agent",),
                             model="m", decision_config={}, at=utcnow())
        store.save(run)
        wait_until(lambda: delivered(container, "agent_stale"), what="the silent agent to be alerted")
        run.beat(at=utcnow(), candles_processed=1, feed_lag=0.0)
        store.save(run)
        wait_until(lambda: delivered(container, "agent_recovered"), what="the agent's recovery")
        for state in ("down", "live"):  # an exchange outage beyond exchange.outage_alert_after, then its end
            run.beat(at=utcnow(), candles_processed=1, feed_lag=900.0 if state == "down" else 1.0,
                     feed_source="binance", feed_state=state, last_candle_at=DAY)
            store.save(run)
            wait_until(lambda: delivered(container, f"feed_{'down' if state == 'down' else 'recovered'}"),
                       what=f"the feed {state}")
        run.stop(reason="done for today", clean=True, at=utcnow())
        store.save(run)

        exploding = ProjectionRunner(container.feed, container.engine, [Projection("exploding", (), Exploding)])
        exploding.catch_up()

        for kind in KINDS:
            wait_until(lambda: delivered(container, kind), what=f"a {kind} alert in both chats")

    rows = outbox_rows(container)
    assert {r.status for r in rows} == {"sent"}
    for chat in (CHAT, OTHER_CHAT):
        assert kinds_sent(container, chat) == Counter(KINDS), "one alert of each kind, no more"
        texts = fake.texts(chat)
        assert len(texts) == len(set(texts)) == len(KINDS), "Telegram got each alert once"
    by_kind = {r.kind: r.text for r in rows if r.chat_id == CHAT}
    assert "PnL +0.0098 BTC" in by_kind["trade_closed"], "0.11 - 0.10 sold, minus both legs' 0.0001 fees"
    assert "2024-02-29 closed with PnL" in by_kind["daily_summary"]
    assert "drawdown_percent = 21.5" in by_kind["trading_halted"]
    assert "exploding stopped at position" in by_kind["projection_stuck"]
    assert {r.message_id for r in rows if r.chat_id == CHAT} <= {m.message_id for m in fake.messages}


def open_account(container: Composition) -> None:
    container.store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))


def test_restarts_and_a_rebuild_of_the_alerts_send_nothing_again(container: Composition, fake: FakeBotApi) -> None:
    project = container.runner()
    open_account(container)
    with running_bot(container, fake):
        container.control.issue("halt", reason="first", by="api", channel="test", at=utcnow())
        project.catch_up()
        wait_until(lambda: delivered(container, "trading_halted"), what="the halt alert")
    readmodels.rebuild(container.feed, container.engine, ["alerts"])
    with running_bot(container, fake):
        container.control.issue("resume", reason="second", by="api", channel="test", at=utcnow())
        project = container.runner()
        project.catch_up()
        # Each chat gets its alerts in log order, so once this one is in, any resend would be too.
        wait_until(lambda: delivered(container, "trading_resumed"), what="the resume alert")
    for chat in (CHAT, OTHER_CHAT):
        assert fake.texts(chat) == ["paper: trading HALTED by rule manual (api): first",
                                    "paper: trading resumed by api: second"]


def test_a_bot_started_on_an_existing_history_sends_only_what_happens_from_then_on(
        container: Composition, fake: FakeBotApi) -> None:
    open_account(container)
    container.control.issue("halt", reason="old news", by="api", channel="test", at=utcnow())
    container.control.issue("resume", reason="old news", by="api", channel="test", at=utcnow())
    project = container.runner()
    project.catch_up()
    with running_bot(container, fake):
        container.control.issue("halt", reason="new", by="api", channel="test", at=utcnow())
        project.catch_up()
        wait_until(lambda: delivered(container, "trading_halted"), what="the new halt")
    for chat in (CHAT, OTHER_CHAT):
        assert fake.texts(chat) == ["paper: trading HALTED by rule manual (api): new"]


def test_the_alerts_fold_restores_at_any_position_and_its_trades_are_the_portfolios(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade(url)
    store = open_store(url)
    agent = agents.resumed(EventLog(store, create_db_engine(url)),
                           load_settings(overrides={"database.url": url, "predictor.name": "sma_cross"}))
    agent.start(("test",))
    agent.run_feed(load_candles(CANDLES / "ETH_BTC-5m.csv").candles[:3000], batch_size=500)
    agent.stop("done")
    events = EventLog(store, create_db_engine(url)).read(0, 1_000_000)
    whole = MemoryTables()
    apply_all(AlertsFold(whole), events)
    portfolio = MemoryTables()
    apply_all(PortfolioFold(portfolio), events)
    for cut in (1, 777, len(events) // 2, len(events) - 1):
        resumed = MemoryTables()
        apply_all(AlertsFold(resumed), events[:cut])
        apply_all(AlertsFold.restore(resumed.rows, resumed), events[cut:])
        assert resumed.rows(ALERTS) == whole.rows(ALERTS) and resumed.rows(ALERT_STATE) == whole.rows(ALERT_STATE)
    alerts = whole.rows(ALERTS)
    closed = [a.text for a in alerts if a.kind == "trade_closed"]
    assert closed and [f"PnL {signed(t.pnl)} BTC" in text for t, text in zip(portfolio.rows(TRADES), closed,
                                                                              strict=True)] == [True] * len(closed)
    rejections = [e for e in events if e.type is Account.OrderRejected]
    assert 0 < sum(a.kind == "order_rejected" for a in alerts) < len(rejections), "repeats of one cause are muted"
