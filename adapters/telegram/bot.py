"""The Telegram bot's life: start, answer commands and deliver alerts, stop.

The composition root builds its collaborators (commands, gateway sessions,
outbox, alert watcher); the bot builds only the Telegram client.

Start:
1. record this process's Gateway (its allowed chats are its sessions);
2. register the chats with the outbox and take back the claims of senders on
   this host that died mid-attempt;
3. run the outbox loop: every `agent.heartbeat_interval` the health watcher,
   every `projections.poll_interval` queue new alerts and send what is due;
4. connect: `Application.builder().token(...).base_url(...)`, `initialize`,
   `start`, `updater.start_polling`. While Telegram cannot be reached this is
   retried with backoff (alerts keep being queued meanwhile); a rejected
   token ends the bot, since nothing works until the settings change.
   Commands sent while the bot was down are dropped, not run late: a /halt
   from hours ago must not surprise anyone.

Stop, in this order; each step's error is logged with what was being done,
and the remaining steps still run: stop connecting, `updater.stop`,
`application.stop`, the outbox loop (the send in flight may finish; its
claims are given back), `application.shutdown`, the Gateway's Stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from telegram import BotCommand, Update
from telegram.error import InvalidToken
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.adapters.services.gateway import Connect, GatewaySessions
from tradeledger.adapters.services.housekeeping import pid_alive
from tradeledger.adapters.services.ports import Clock
from tradeledger.adapters.telegram.commands import CHANNEL, Commands, chat_peer
from tradeledger.adapters.telegram.delivery import Backoff, Sender, stale_claimers
from tradeledger.adapters.telegram.logs import protect_token
from tradeledger.projections.alert_watch import AlertWatcher
from tradeledger.projections.outbox import Outbox
from tradeledger.settings import Settings

log = logging.getLogger(__name__)

# Request timeouts (seconds). One send takes at most about their sum, well inside a claim.
CONNECT_TIMEOUT, READ_TIMEOUT, WRITE_TIMEOUT, POOL_TIMEOUT = 5.0, 10.0, 10.0, 5.0
POLL_TIMEOUT = timedelta(seconds=10)  # long polling: how long Telegram holds a getUpdates open
STOP_CHECK_SECONDS = 0.2  # how often `run` looks at the stop signal


class Tuning(msgspec.Struct, frozen=True, kw_only=True):
    """Delivery timings: the defaults suit Telegram; tests shorten them."""

    claim_seconds: float = 60.0  # longer than any one send can take
    backoff_base: float = 1.0  # first retry after a failed send or connect
    backoff_cap: float = 300.0
    stuck_after: float = 120.0  # a projection behind the log and not moving this long is stuck
    stop_grace: float = CONNECT_TIMEOUT + WRITE_TIMEOUT + READ_TIMEOUT  # for the send in flight at stop


def claimer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `event` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


class TelegramBot:
    def __init__(self, *, settings: Settings, store: LedgerStore, commands: Commands, gateway: GatewaySessions,
                 outbox: Outbox, watcher: AlertWatcher, clock: Clock, tuning: Tuning) -> None:
        telegram = settings.telegram
        if telegram.token is None:
            raise ValueError("telegram.token is not set")
        protect_token(telegram.token)
        self.store = store
        self.settings = settings
        self.clock = clock
        self.tuning = tuning
        self.backoff = Backoff(tuning.backoff_base, tuning.backoff_cap)
        self.application = (
            Application.builder().token(telegram.token).base_url(telegram.base_url)
            .connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT).write_timeout(WRITE_TIMEOUT)
            .pool_timeout(POOL_TIMEOUT).build()
        )
        self.gateway = gateway
        self.commands = commands
        self.application.add_handler(MessageHandler(filters.COMMAND, self.commands.handle))
        self.application.add_error_handler(self.on_error)
        self.outbox = outbox
        self.watcher = watcher
        self.claimer = claimer_id()
        self.sender = Sender(self.outbox, self.application.bot, claimer=self.claimer,
                             claim=timedelta(seconds=tuning.claim_seconds), backoff=self.backoff, clock=clock)
        self.connected = asyncio.Event()
        self.stopping = asyncio.Event()
        self.token_rejected = False
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def serve(self, stop: threading.Event) -> int:
        """Run on this thread's own event loop until `stop` is set; the exit status (see `run`, 1 on a failure).

        `tradeledger telegram` calls it on the main thread, `tradeledger run` on a thread of its own.
        """
        try:
            return asyncio.run(self.run(stop))
        except Exception:  # noqa: BLE001 - on a worker thread nobody else would say why the bot is gone
            log.exception("the Telegram bot failed")
            return 1

    async def run(self, stop: threading.Event) -> int:
        """Serve until `stop` is set; 0 after a normal stop, 2 when Telegram rejected the token."""
        try:
            await self.start()
            while not stop.is_set() and not self.token_rejected:
                await asyncio.sleep(STOP_CHECK_SECONDS)
        finally:
            await self.stop("telegram.token rejected" if self.token_rejected else "stopped on request")
        return 2 if self.token_rejected else 0

    # -- start --------------------------------------------------------------------

    async def start(self) -> None:
        chats = self.settings.telegram.allowed_chat_ids
        if not chats:
            log.warning("telegram.allowed_chat_ids is empty: every command is refused and no alert is sent")
        await self.gateway.start([Connect(chat_peer(chat), CHANNEL, chat_peer(chat)) for chat in chats])
        await asyncio.to_thread(self.prepare_outbox)
        self.tasks["outbox"] = asyncio.create_task(self.pump(), name="telegram-outbox")
        self.tasks["connect"] = asyncio.create_task(self.connect(), name="telegram-connect")

    def prepare_outbox(self) -> None:
        now = self.clock()
        self.outbox.register_chats(head=self.store.head_position(), at=now)
        stale = stale_claimers(self.outbox.claimers(), me=self.claimer, host=socket.gethostname(), is_alive=pid_alive)
        if stale:
            released = self.outbox.release(stale, at=now)
            log.warning("took back %d alert(s) claimed by senders that are gone (%s): Telegram may already have "
                        "them, so they may arrive twice", released, ", ".join(sorted(stale)))

    async def connect(self) -> None:
        failures = 0
        app = self.application
        while not self.stopping.is_set():
            try:
                await app.initialize()
                await app.start()
                assert app.updater is not None
                await app.updater.start_polling(timeout=POLL_TIMEOUT, drop_pending_updates=True,
                                                allowed_updates=[Update.MESSAGE])
            except InvalidToken:
                log.error("Telegram rejected telegram.token: the bot stops (queued alerts stay queued)")
                self.token_rejected = True
                return
            except Exception as error:  # noqa: BLE001 - logged; connecting is retried until it works or we stop
                failures += 1
                delay = self.backoff.delay(failures).total_seconds()
                log.warning("connecting to Telegram failed (try %d), retrying in %.0fs: %s: %s", failures, delay,
                            type(error).__name__, error)
                await self.step("undo a half-done start", self.stop_application)  # start again from the top
                await wait(self.stopping, delay)
                continue
            self.connected.set()
            log.info("Telegram bot @%s is polling; alerts go to chats %s", app.bot.username,
                     ", ".join(map(str, self.settings.telegram.allowed_chat_ids)) or "(none)")
            await self.publish_commands()
            return

    async def publish_commands(self) -> None:
        """Show the commands in Telegram's menu; a bot without the menu still works."""
        try:
            await self.application.bot.set_my_commands(
                [BotCommand(name, spec.help[:256]) for name, spec in self.commands.specs.items()])
        except Exception:  # noqa: BLE001 - cosmetic, logged
            log.warning("publishing the command menu failed", exc_info=True)

    # -- the outbox loop ---------------------------------------------------------

    async def pump(self) -> None:
        """Watch, queue and send until stopping; an error is logged and the round tried again."""
        poll = self.settings.projections.poll_interval
        next_watch = self.clock()
        while not self.stopping.is_set():
            accepted = 0
            try:
                now = self.clock()
                if now >= next_watch:
                    await asyncio.to_thread(self.watch, now)
                    next_watch = now + timedelta(seconds=self.settings.agent.heartbeat_interval)
                await asyncio.to_thread(self.outbox.enqueue, at=now)
                if self.connected.is_set():
                    accepted = await self.sender.deliver_due()
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("an alert outbox round failed; trying again in %ss", poll)
            if not accepted:  # after a delivery the chat's next alert may be due at once
                await wait(self.stopping, poll)

    def watch(self, now: datetime) -> None:
        self.outbox.add(self.watcher.check(now=now, head=self.store.head_position()), at=now)

    # -- errors and stop ---------------------------------------------------------

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
        log.error("handling Telegram update %s (chat %s) failed", getattr(update, "update_id", None), chat,
                  exc_info=context.error)

    async def stop(self, reason: str) -> None:
        self.stopping.set()
        await self.step("stop connecting", lambda: self.finish("connect", 0))
        await self.step("updater.stop", self.stop_polling)
        await self.step("application.stop", self.stop_application)
        await self.step("stop the alert outbox", self.stop_outbox)
        await self.step("application.shutdown", self.application.shutdown)
        await self.step("record the gateway's stop", lambda: self.gateway.stop(reason))
        log.info("Telegram bot stopped: %s", reason)

    @staticmethod
    async def step(what: str, action: Callable[[], Awaitable[Any]]) -> None:
        """Run one step of a sequence that must go on: its error is logged, not raised."""
        try:
            await action()
        except Exception:  # noqa: BLE001 - logged; the remaining steps still run
            log.exception("Telegram bot: %s failed; going on with the remaining steps", what)

    async def stop_polling(self) -> None:
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()

    async def stop_application(self) -> None:
        if self.application.running:
            await self.application.stop()

    async def stop_outbox(self) -> None:
        await self.finish("outbox", self.tuning.stop_grace)
        released = await asyncio.to_thread(self.outbox.release, [self.claimer], at=self.clock())
        if released:
            log.warning("stopped during %d send(s): given back; Telegram may have them, so they may arrive twice",
                        released)

    async def finish(self, name: str, grace: float) -> None:
        """Let the task end by itself within `grace` seconds, then cancel it."""
        task = self.tasks.get(name)
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, Exception):
            log.error("the Telegram bot's %s task had failed", name, exc_info=outcome)
