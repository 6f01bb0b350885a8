"""What the Telegram tests share: the fake Bot API, settings pointing at it, a running bot and runner."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tradeledger.adapters.composition import Composition
from tradeledger.adapters.telegram.bot import TelegramBot, Tuning
from tradeledger.projections.outbox import Outbox, OutboxRow
from tradeledger.projections.runner import ProjectionRunner
from tradeledger.settings import Settings, load_settings
from tests.composing import composed
from tests.fakebotapi import FakeBotApi, wait_until

TOKEN = "123456:TEST-token-that-must-never-be-logged"
CHAT, OTHER_CHAT, STRANGER = 111, 222, 999
# Short waits everywhere: a test waits for conditions, never for these.
FAST = Tuning(claim_seconds=5.0, backoff_base=0.05, backoff_cap=0.4, stuck_after=0.5, stop_grace=5.0)
STOP_TIMEOUT = 60.0


@pytest.fixture
def fake() -> Iterator[FakeBotApi]:
    api = FakeBotApi(TOKEN).start()
    yield api
    if api.thread.is_alive():
        api.stop()


def telegram_settings(url: str, fake: FakeBotApi, *, chats: str = f"{CHAT},{OTHER_CHAT}") -> Settings:
    return load_settings(overrides={
        "database.url": url, "predictor.name": "sma_cross", "telegram.token": TOKEN,
        "telegram.allowed_chat_ids": chats, "telegram.base_url": fake.base_url,
        "agent.heartbeat_interval": "0.3", "projections.poll_interval": "0.05",
    })


@pytest.fixture
def container(store_url: str, fake: FakeBotApi) -> Iterator[Composition]:
    """On a SQLite file and on the PostgreSQL server (conftest's `store_url`)."""
    with composed(telegram_settings(store_url, fake)) as built:
        yield built


def bot_for(container: Composition) -> TelegramBot:
    return container.telegram_bot(FAST)


@contextmanager
def running_bot(container: Composition, fake: FakeBotApi) -> Iterator[TelegramBot]:
    """The bot on a thread, as `tradeledger run` runs it, polling the fake before the block starts."""
    calls_before = len(fake.calls)
    bot, stop = bot_for(container), threading.Event()
    thread = threading.Thread(target=bot.serve, args=(stop,), name="telegram")
    thread.start()
    try:
        wait_until(lambda: any(c.method == "getUpdates" for c in fake.calls[calls_before:]), what="the bot to poll")
        yield bot
    finally:
        stop.set()
        thread.join(STOP_TIMEOUT)
        assert not thread.is_alive(), "the bot did not stop"


@contextmanager
def running_projections(container: Composition) -> Iterator[ProjectionRunner]:
    runner = ProjectionRunner(container.feed, container.engine, poll_interval=0.05)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def outbox_rows(container: Composition) -> list[OutboxRow]:
    return Outbox(container.engine, container.settings.telegram.allowed_chat_ids).rows()
