"""Telegram: alerts to the allowed chats, commands from them (python-telegram-bot). See docs/telegram.md.

- `bot`: the bot's life (start, stop, the outbox loop); `Composition.telegram_bot()` builds it and
  `TelegramBot.serve(stop)` runs it (`tradeledger telegram`, and `tradeledger run` on a thread);
- `commands`: what each command answers, and refusing unknown chats (recorded through the gateway
  sessions service, adapters/services/gateway.py);
- `delivery`: sending the outbox with retries, at least once;
- `logs`: keeping the token out of every log record.
"""
