"""Commands with the real client: answers from the read models, refusals, /halt against the real agent, stop."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from tradeledger.adapters import eventlog
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.release import VERSION
from tradeledger.adapters.services.views import DailyPnlView
from tradeledger.domain.account import Account
from tradeledger.domain.control import ControlCommand
from tradeledger.domain.ids import account_id
from tradeledger.domain.values import Candle
from tests.conftest import CANDLES
from tradeledger.projections.alerts import signed
from tests.fakebotapi import FakeBotApi, wait_until
from tests.forcing import forced_exit_filled, live_holding, recorded
from tests.telegram_support import (  # noqa: F401 - fixtures
    CHAT,
    STRANGER,
    TOKEN,
    container,
    fake,
    outbox_rows,
    running_bot,
)


@pytest.fixture(scope="module")
def candles() -> list[Candle]:
    return load_candles(CANDLES / "ETH_BTC-5m.csv").candles


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def ask(fake: FakeBotApi, chat: int, *commands: str) -> list[str]:
    """Send the commands from `chat`; the bot's replies to them, in the same order."""
    sent = [fake.send_command(chat, command) for command in commands]
    return [wait_until(lambda: fake.reply(chat, message_id), what=f"the reply to {command}")
            for message_id, command in zip(sent, commands, strict=True)]


def traded(container: Composition, candles: list[Candle], count: int) -> TradingSession:
    """The real agent over the first `count` candles, stopped (its lease released) and projected."""
    agent = container.agent(container.settings)
    agent.resume()
    agent.start(("test",))
    agent.run_feed(candles[:count], batch_size=200)
    agent.stop("test")
    container.runner().catch_up()
    return agent


def test_every_command_answers_from_the_read_models(container: Composition, fake: FakeBotApi,
                                                    candles: list[Candle]) -> None:
    traded(container, candles, 1500).stop("done")
    container.runner().catch_up()
    with running_bot(container, fake):
        names = ["help", "status", "balance", "positions", "trades", "pnl", "signals", "health", "nosuch"]
        replies = dict(zip(names, ask(fake, CHAT, *(f"/{n}" for n in names)), strict=True))
    assert "/halt [reason]: stop new entries" in replies["help"] and all(
        replies["help"].count(f"\n/{n}") + replies["help"].startswith(f"/{n}") == 1 for n in names[:-1])
    assert re.match(r"paper: (trading|HALTED)\nequity [\d.]+ BTC \([+-][\d.]+%\)", replies["status"])
    assert "agent: stopped" in replies["status"]
    assert [line.split(" ")[0] for line in replies["balance"].splitlines()] == [
        "paper", "cash", "equity", "initial", "gross", "fees", "net", "unrealised", "return"]
    figures = {line.split(" ")[0]: Decimal(line.split(" ")[-1 if line.startswith("fees") else 2])
               for line in replies["balance"].splitlines() if line.split(" ")[0] in ("gross", "fees", "net")}
    assert figures["net"] == figures["gross"] - figures["fees"]
    assert "\ninitial balance 1\n" in replies["balance"]
    assert replies["positions"] == "no open positions" or replies["positions"].startswith("ETH/BTC: ")
    assert len(replies["trades"].splitlines()) == 10 and " PnL " in replies["trades"]
    assert replies["pnl"].splitlines()[0].startswith("2018-01-10: ") and len(replies["pnl"].splitlines()) == 6
    assert replies["signals"].startswith("ETH/BTC 5m: ")
    assert "portfolio: position" in replies["health"] and "alerts: position" in replies["health"]
    assert replies["nosuch"] == "unknown command /nosuch; /help lists the commands"


def test_commands_from_an_unknown_chat_change_nothing_and_are_recorded_as_refused(
        container: Composition, fake: FakeBotApi) -> None:
    container.store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
    container.runner().catch_up()
    with running_bot(container, fake):
        replies = ask(fake, STRANGER, "/halt now", "/status")
        (allowed,) = ask(fake, CHAT, "/status")
    assert replies == ["This chat may not use this bot. To allow it, add 999 to telegram.allowed_chat_ids."] * 2
    refused = eventlog.audit_page(container.feed, types=["CommandRefused"])
    assert [(e.data["command"], e.data["peer"], e.data["channel"]) for e in refused] == [
        ("/halt", "chat:999 user:999", "telegram"), ("/status", "chat:999 user:999", "telegram")]
    assert "not in telegram.allowed_chat_ids" in refused[0].data["reason"]
    assert not container.store.repository.get(account_id("paper")).is_halted
    assert not eventlog.audit_page(container.feed, types=["TradingHalted"])
    assert allowed.startswith("paper: trading")


def test_halt_from_telegram_stops_the_real_agents_entries_and_resume_lets_it_trade_again(
        container: Composition, fake: FakeBotApi, candles: list[Candle]) -> None:
    agent = traded(container, candles, 1000)
    assert not agent.account.is_halted
    with running_bot(container, fake):
        (halted,) = ask(fake, CHAT, "/halt going on holiday")
        (again,) = ask(fake, CHAT, "/halt")
        position = int(re.fullmatch(r"trading halted: no new entries \(log position (\d+)\)", halted)[1])
        # No agent ran, so each command was applied at once; the next agent continues from the halted account.
        traded(container, candles, 2500)
        after_halt = eventlog.audit_page(container.feed, after=position, limit=10_000)
        (resumed,) = ask(fake, CHAT, "/resume back")
        traded(container, candles, 4000)
        after_resume = eventlog.audit_page(container.feed, after=after_halt[-1].position, limit=10_000)
    assert again == "trading is already halted by manual"
    event = {e.position: e for e in eventlog.audit_page(container.feed, types=["TradingHalted"])}[position]
    assert (event.data["rule"], event.data["by"], event.data["reason"]) == (
        "manual", f"telegram:{CHAT}", "going on holiday")
    entries = [e for e in after_halt if e.type == "OrderPlaced" and e.data["side"] == "buy"]
    refused = [e for e in after_halt if e.type == "OrderRejected" and e.data["rule"] == "manual"]
    assert not entries and refused, "every entry signal after the halt was rejected"
    assert resumed.startswith("trading resumed (log position ")
    assert [(e.data["by"], e.data["reason"]) for e in after_halt + after_resume if e.type == "TradingResumed"][0] == (
        f"telegram:{CHAT}", "back")
    assert any(e.type == "OrderPlaced" and e.data["side"] == "buy" for e in after_resume)


def test_the_bot_stops_when_telegram_is_down_keeps_its_alerts_and_never_logs_the_token(
        container: Composition, fake: FakeBotApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    container.store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
    with running_bot(container, fake):
        fake.stop()
        container.control.issue("halt", reason="while Telegram is down", by="api", channel="test", at=utcnow())
        container.runner().catch_up()
        wait_until(lambda: all(r.attempts >= 2 for r in outbox_rows(container)) and outbox_rows(container),
                   what="failed attempts on both chats")
    rows = outbox_rows(container)
    assert {(r.status, r.claimed_by) for r in rows} == {("pending", None)}, "kept for the next start, unclaimed"
    assert all(r.last_error and r.last_error.startswith("NetworkError") for r in rows)
    messages = [r.getMessage() for r in caplog.records]
    assert any("Error while calling `get_updates` one more time" in m for m in messages), "updater.stop's error"
    assert any(f"to chat {rows[0].chat_id}, attempt 1 failed" in m for m in messages)
    assert [e.data["reason"] for e in eventlog.audit_page(container.feed, types=["Stopped"])] == ["stopped on request"]
    assert any("bot" in m and "Set Bot API URL" in m for m in messages), "PTB's DEBUG line with the URL ran"
    assert TOKEN not in caplog.text and all(TOKEN not in (r.exc_text or "") for r in caplog.records)


def summed(days: list[DailyPnlView], period: Callable[[date], date]) -> dict[date, Decimal]:
    """The daily PnL summed by the first day of each period, computed here independently of the bot."""
    sums: dict[date, Decimal] = defaultdict(Decimal)
    for day in days:
        sums[period(day.day)] += day.pnl
    return sums


def test_the_freqtrade_read_commands_answer_from_the_projections(container: Composition, fake: FakeBotApi,
                                                                 candles: list[Candle]) -> None:
    traded(container, candles, 3000)
    with running_bot(container, fake):
        names = ["profit", "performance", "daily", "weekly", "monthly", "count", "version", "help"]
        replies = dict(zip(names, ask(fake, CHAT, *(f"/{n}" for n in names)), strict=True))
    trades = container.read_models.trades(100_000)
    net = sum((t.net_pnl for t in trades), Decimal(0))
    assert replies["profit"].startswith(f"paper: {len(trades)} closed trades, ")
    assert f"closed net PnL {signed(net)} BTC" in replies["profit"]
    assert replies["performance"] == (f"ETH/BTC: net PnL {signed(net)} over {len(trades)} trades, "
                                      + replies["profit"].splitlines()[0].split(", ", 1)[1])
    days = container.read_models.daily_pnl(None, None)
    assert len(days) > 7 and replies["daily"] == "\n".join(f"{d.day}: {signed(d.pnl)}" for d in days[-7:])
    weeks = summed(days, lambda d: date.fromisocalendar(*d.isocalendar()[:2], 1))
    months = summed(days, lambda d: date(d.year, d.month, 1))
    assert sum(weeks.values()) == sum(months.values()) == sum(d.pnl for d in days)
    assert replies["weekly"] == "\n".join(f"week of {w}: {signed(weeks[w])}" for w in sorted(weeks)[-4:])
    assert replies["monthly"] == "\n".join(f"{m:%Y-%m}: {signed(months[m])}" for m in sorted(months)[-6:])
    assert re.fullmatch(r"open positions [01], open orders [01], closed trades \d+", replies["count"])
    assert replies["version"] == f"tradeledger {VERSION}"
    assert "/forceexit SYMBOL|all [reason]: sell at the next candle's open" in replies["help"]


def test_forceexit_from_telegram_closes_the_live_position_and_the_entry_switch_works(
        store_url: str, fake: FakeBotApi) -> None:
    chats = {"telegram.token": TOKEN, "telegram.allowed_chat_ids": str(CHAT), "telegram.base_url": fake.base_url}
    with live_holding(store_url, **chats) as live, running_bot(live.container, fake):
        (usage, exited) = ask(fake, CHAT, "/forceexit", f"/forceexit {live.held.symbol.lower()} taking profit")
        (issued,) = recorded(live.container, ControlCommand.Issued, command="force_exit")
        placed, _ = forced_exit_filled(live, issued.originator_id, f"telegram:{CHAT}")
        replies = ask(fake, CHAT, "/forceexit all", "/stopentry", "/forcebuy ETH/BTC", "/startentry",
                      "/forcebuy eth/btc", "/forcebuy all")
    assert usage == "usage: /forceexit SYMBOL|all [reason]"
    assert exited.startswith("forced exit of ETH/BTC placed: it fills at the next candle's open (log position ")
    assert placed.reason == f"force_exit by telegram:{CHAT} via telegram: taking profit"
    assert replies[0].startswith("nothing to exit: no open position")
    assert replies[1].startswith("entries stopped: exits go on (log position ")
    assert replies[2] == "entries are stopped (stop_entry): no new entries"
    assert replies[3].startswith("entries allowed again (log position ")
    assert replies[4].startswith("forced entry of ETH/BTC placed")
    assert replies[5].startswith("symbol: force_enter takes a symbol")
