"""Sending the outbox: each chat's alerts in order, marked sent only after Telegram accepted them.

Guarantees (docs/telegram.md has the whole story):
- at least once: a row stays pending until `sendMessage` returned a message;
  every failure that may pass (network errors, timeouts, 5xx, flood control,
  a rejected token) leaves it pending for another attempt;
- never twice to the same chat for the same alert, with one exception: when
  Telegram accepted a message but the sender could not record it (killed
  between the two, a read timeout after Telegram received the request, the
  database failing at that moment), the next attempt sends it again, once.

Errors, and what they do to the row:
- 429 (`RetryAfter`): the row, and every send of this bot, waits `retry_after`
  (flood control is per bot, not per chat);
- 403 (`Forbidden`: the user blocked the bot), 400 (`BadRequest`: no such
  chat, ...), a migrated chat: `failed` with Telegram's reason, never retried;
- anything else: retried after an exponential backoff (base * 2^(attempt-1),
  capped), for as long as it takes.
Every error is logged with the alert, the chat and the attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from tradeledger.adapters.services.ports import Clock
from tradeledger.projections.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

# Telegram will never take these: retrying cannot help, the reason is recorded instead.
REFUSALS = (Forbidden, BadRequest, ChatMigrated)


class Backoff(NamedTuple):
    base: float
    cap: float

    def delay(self, attempt: int) -> timedelta:
        """The wait after the `attempt`-th failure in a row (1-based)."""
        return timedelta(seconds=min(self.cap, self.base * 2 ** (attempt - 1)))


def retry_after(error: RetryAfter) -> timedelta:
    # The public `retry_after` is deprecated as an int and warns; PTB's own retry loop reads this one.
    return error._retry_after  # noqa: SLF001


def refusal(error: TelegramError) -> str:
    if isinstance(error, ChatMigrated):
        return f"the chat became supergroup {error.new_chat_id}: put that id in telegram.allowed_chat_ids"
    return f"{type(error).__name__}: {error.message}"


def stale_claimers(claimers: set[str], *, me: str, host: str, is_alive: Callable[[int], bool]) -> set[str]:
    """Claims nobody will finish: this process's (left by an earlier process with our pid), and those of
    processes on this host that are gone. A claim from another host is left to run out."""
    stale = set()
    for claimer in claimers:
        claimer_host, _, pid = claimer.rpartition(":")
        if claimer == me or (claimer_host == host and pid.isdigit() and not is_alive(int(pid))):
            stale.add(claimer)
    return stale


class Sender:
    def __init__(self, outbox: Outbox, bot: Bot, *, claimer: str, claim: timedelta, backoff: Backoff,
                 clock: Clock) -> None:
        self.outbox = outbox
        self.bot = bot
        self.claimer = claimer
        self.claim = claim
        self.backoff = backoff
        self.clock = clock
        self.paused_until: datetime | None = None

    async def deliver_due(self) -> int:
        """Attempt each chat's oldest due alert once; returns how many Telegram accepted."""
        now = self.clock()
        if self.paused_until is not None and now < self.paused_until:
            return 0
        accepted = 0
        for row in await asyncio.to_thread(self.outbox.due, now):
            claimed = await asyncio.to_thread(self.outbox.claim, row, by=self.claimer, now=now, until=now + self.claim)
            if claimed:
                accepted += await self.attempt(row, attempt=row.attempts + 1)
            if self.paused_until is not None:
                break
        return accepted

    async def attempt(self, row: OutboxRow, *, attempt: int) -> int:
        context = f"alert {row.alert_id} ({row.kind}) to chat {row.chat_id}, attempt {attempt}"
        try:
            message = await self.bot.send_message(chat_id=row.chat_id, text=row.text)
        except RetryAfter as error:
            self.paused_until = self.clock() + retry_after(error)
            log.warning("Telegram flood control on %s: every send waits until %s", context, self.paused_until)
            await asyncio.to_thread(self.outbox.retry, row, error=str(error), at=self.paused_until)
        except REFUSALS as error:
            log.error("Telegram refused %s for good: %s", context, error)
            await asyncio.to_thread(self.outbox.failed, row, error=refusal(error))
        except Exception as error:  # noqa: BLE001 - whatever it was, the alert must not be lost: retry it later
            at = self.clock() + self.backoff.delay(attempt)
            # A network error explains itself; anything else may be a bug, so it gets its traceback.
            log.warning("sending %s failed, retrying at %s: %s: %s", context, at.isoformat(timespec="seconds"),
                        type(error).__name__, error, exc_info=not isinstance(error, NetworkError))
            await asyncio.to_thread(self.outbox.retry, row, error=f"{type(error).__name__}: {error}", at=at)
        else:
            await self.acknowledge(row, message.message_id, context)
            return 1
        return 0

    async def acknowledge(self, row: OutboxRow, message_id: int, context: str) -> None:
        """Record the delivery until it is recorded: every failed try is a message sent again after a restart."""
        failures = 0
        while True:
            try:
                await asyncio.to_thread(self.outbox.sent, row, message_id=message_id, at=self.clock())
                return
            except Exception:  # noqa: BLE001 - logged, and tried again: giving up would resend the alert
                failures += 1
                log.exception("Telegram accepted %s as message %s, but recording that failed (try %d); "
                              "retrying", context, message_id, failures)
                await asyncio.sleep(self.backoff.delay(failures).total_seconds())
