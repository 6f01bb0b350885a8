"""Telegram: alerts to the allowed chats, commands from them (python-telegram-bot). See docs/telegram.md.

- `bot`: the bot's life (start, stop, the outbox loop) and `BotThread` for embedding;
- `commands`: what each command answers, and refusing unknown chats;
- `delivery`: sending the outbox with retries, at least once;
- `gateway`: this process's Gateway stream;
- `logs`: keeping the token out of every log record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.telegram.bot import BotThread

if TYPE_CHECKING:
    from adapters.container import Container


def start_in_background(container: Container) -> BotThread | None:
    """For `tradeledger run`: the bot on its own thread when telegram.token is set, else None.

    The embedded runner keeps the alerts read model current; the bot queues and
    sends them. Call `.stop()` on the result at shutdown (it returns when the
    bot has stopped, within about 30 seconds even when Telegram cannot be reached).
    """
    if container.settings.telegram.token is None:
        return None
    return BotThread(container.telegram_bot()).start()
