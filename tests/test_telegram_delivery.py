"""Delivery with the real client against a failing Telegram: retries, refusals, and a sender killed mid-send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tradeledger.adapters import eventlog
from tradeledger.adapters.composition import Composition
from tradeledger.adapters.telegram.bot import TelegramBot, claimer_id
from tradeledger.domain.account import Account
from tradeledger.projections.outbox import Outbox, OutboxRow
from tests.composing import composed
from tests.conftest import ROOT
from tests.fakebotapi import AcceptThen, Blocked, Drop, FakeBotApi, Flood, ServerError, wait_until
from tests.telegram_support import (  # noqa: F401 - fixtures
    CHAT,
    OTHER_CHAT,
    STOP_TIMEOUT,
    TOKEN,
    bot_for,
    container,
    fake,
    outbox_rows,
    running_bot,
    running_projections,
    telegram_settings,
)

HALTED = "paper: trading HALTED by rule manual (api): {}"
RESUMED = "paper: trading resumed by api: {}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def one_chat(tmp_path: Path, fake: FakeBotApi) -> Iterator[Composition]:
    with composed(telegram_settings(f"sqlite:///{tmp_path / 'ledger.sqlite'}", fake, chats=str(CHAT))) as built:
        built.store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
        yield built


@pytest.fixture
def two_chats(tmp_path: Path, fake: FakeBotApi) -> Iterator[Composition]:
    with composed(telegram_settings(f"sqlite:///{tmp_path / 'ledger.sqlite'}", fake)) as built:
        built.store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
        yield built


def halt(container: Composition, reason: str) -> None:
    container.control.issue("halt", reason=reason, by="api", channel="test", at=utcnow())
    container.runner().catch_up()


def resume(container: Composition, reason: str) -> None:
    container.control.issue("resume", reason=reason, by="api", channel="test", at=utcnow())
    container.runner().catch_up()


def test_flood_control_server_errors_and_dropped_connections_are_retried_until_telegram_accepts(
        one_chat: Composition, fake: FakeBotApi, caplog: pytest.LogCaptureFixture) -> None:
    fake.fail_next(Flood(retry_after=1), ServerError(500), ServerError(502), Drop())
    with running_bot(one_chat, fake):
        halt(one_chat, "storm")
        wait_until(lambda: fake.texts(CHAT), what="the alert to get through")
    sends = fake.sends()
    assert [s.outcome for s in sends] == ["Flood", "ServerError", "ServerError", "Drop", "ok"]
    assert sends[1].at - sends[0].at >= 1.0, "flood control's retry_after is waited out"
    assert fake.texts(CHAT) == [HALTED.format("storm")]
    (row,) = outbox_rows(one_chat)
    assert (row.status, row.attempts, row.claimed_by) == ("sent", 5, None)
    assert row.last_error is not None and row.last_error.startswith("NetworkError"), "the dropped connection"
    logged = [r.getMessage() for r in caplog.records if r.name == "tradeledger.adapters.telegram.delivery"]
    assert any("flood control" in m and "attempt 1" in m for m in logged)
    assert sum("failed, retrying" in m and f"chat {CHAT}" in m for m in logged) == 3, "each failure, with context"


def test_a_chat_that_blocked_the_bot_is_marked_failed_with_the_reason_and_the_others_go_on(
        two_chats: Composition, fake: FakeBotApi) -> None:
    fake.fail_next(Blocked())  # the first send: CHAT's copy of the halt alert
    with running_bot(two_chats, fake):
        halt(two_chats, "first")
        resume(two_chats, "second")
        wait_until(lambda: len(fake.texts(OTHER_CHAT)) == 2 and fake.texts(CHAT), what="the other alerts")
    assert fake.texts(CHAT) == [RESUMED.format("second")], "the failed alert is not retried and blocks nothing"
    assert fake.texts(OTHER_CHAT) == [HALTED.format("first"), RESUMED.format("second")]
    failed = [r for r in outbox_rows(two_chats) if r.status == "failed"]
    assert [(r.chat_id, r.kind, r.attempts) for r in failed] == [(CHAT, "trading_halted", 1)]
    assert failed[0].last_error == "Forbidden: Forbidden: bot was blocked by the user"


def test_a_sender_killed_after_telegram_accepted_an_alert_sends_it_once_more_and_loses_none(
        tmp_path: Path, fake: FakeBotApi) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    env = {**os.environ, "TRADELEDGER_DATABASE__URL": url, "TRADELEDGER_TELEGRAM__TOKEN": TOKEN,
           "TRADELEDGER_TELEGRAM__ALLOWED_CHAT_IDS": str(CHAT), "TRADELEDGER_TELEGRAM__BASE_URL": fake.base_url,
           "TRADELEDGER_PROJECTIONS__POLL_INTERVAL": "0.05"}

    def start_bot(log: Path) -> subprocess.Popen[bytes]:
        polls = len([c for c in fake.calls if c.method == "getUpdates"])
        process = subprocess.Popen([sys.executable, "-m", "tradeledger.adapters.cli", "telegram"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        wait_until(lambda: len([c for c in fake.calls if c.method == "getUpdates"]) > polls or process.poll(),
                   timeout=60, what="the telegram process to poll")
        assert process.poll() is None, log.read_text()
        return process

    def kill_first() -> None:
        first.send_signal(signal.SIGKILL)
        first.wait()

    with composed(telegram_settings(url, fake, chats=str(CHAT))) as container:
        container.store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
        first = start_bot(tmp_path / "first.log")
        # The second alert is accepted by Telegram, then its sender dies before it can record that.
        fake.fail_next(AcceptThen(lambda: None), AcceptThen(kill_first))
        halt(container, "one")
        resume(container, "two")
        halt(container, "three")
        wait_until(lambda: first.poll() is not None, what="the first sender to be killed")
        second = start_bot(tmp_path / "second.log")
        wait_until(lambda: len(fake.texts(CHAT)) == 4, what="the remaining alerts")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        rows = outbox_rows(container)
        stopped = eventlog.audit_page(container.feed, types=["Stopped"])
    assert fake.texts(CHAT) == [HALTED.format("one"), RESUMED.format("two"), RESUMED.format("two"),
                                HALTED.format("three")], "the one in flight is sent again, once; none is lost"
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1), ("sent", 2), ("sent", 1)]
    second_log = (tmp_path / "second.log").read_text()
    assert "took back 1 alert(s) claimed by senders that are gone" in second_log
    assert TOKEN not in second_log + (tmp_path / "first.log").read_text()
    assert [e.data["reason"] for e in stopped] == ["stopped on request"], "the killed gateway never said so"


class Lockstep:
    """Makes two senders read the due alerts together: neither claims one before both have read them."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)
        self.finishing = False
        self.broken = 0  # rounds that went ahead alone before the end (the test would prove less)

    def join(self, bot: TelegramBot) -> None:
        due = bot.outbox.due

        def due_together(now: datetime) -> list[OutboxRow]:
            rows = due(now)
            try:
                self.barrier.wait(timeout=STOP_TIMEOUT)
            except threading.BrokenBarrierError:
                self.broken += not self.finishing
            return rows

        bot.outbox.due = due_together  # type: ignore[method-assign]

    def finish(self) -> None:
        self.finishing = True
        self.barrier.abort()


@contextmanager
def serving(bot: TelegramBot) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=bot.serve, args=(stop,), name="telegram")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(STOP_TIMEOUT)
        assert not thread.is_alive(), "the bot did not stop"


def test_two_senders_on_one_outbox_send_each_alert_exactly_once_per_chat(container: Composition,
                                                                         fake: FakeBotApi) -> None:
    """Two bots, as two `tradeledger telegram` replicas, on one outbox. Every round both read the same due
    alerts before either claims one, so both always try to send the same alert: only the claim decides."""
    store = container.store
    store.save(Account.open("paper", "BTC", Decimal(1), at=utcnow()))
    Outbox(container.engine, container.settings.telegram.allowed_chat_ids).register_chats(
        head=store.head_position(), at=utcnow())
    reasons = [f"round {n}" for n in range(6)]
    for n, reason in enumerate(reasons):
        container.control.issue("resume" if n % 2 else "halt", reason=reason, by="api", channel="test", at=utcnow())
    container.runner().catch_up()
    lockstep = Lockstep()
    bots = [bot_for(container) for _ in range(2)]
    for number, bot in enumerate(bots):
        bot.claimer = bot.sender.claimer = f"{claimer_id()}-{number}"  # two processes' claims
        lockstep.join(bot)
    with ExitStack() as running:
        # The projections follow the bots' own gateway events, as in `run`: left behind, they would
        # (rightly) raise projection_stuck alerts, rows this test does not expect.
        running.enter_context(running_projections(container))
        for bot in bots:
            running.enter_context(serving(bot))
        running.callback(lockstep.finish)  # first on the way out (before the bots stop), also on a failure
        wait_until(lambda: [r.status for r in outbox_rows(container)] == ["sent"] * 2 * len(reasons),
                   timeout=60, what="every alert to be sent")
    expected = [(RESUMED if n % 2 else HALTED).format(reason) for n, reason in enumerate(reasons)]
    for chat in (CHAT, OTHER_CHAT):
        assert [t for t in fake.texts(chat) if t.startswith("paper:")] == expected, "each once, in order"
    assert lockstep.broken == 0
