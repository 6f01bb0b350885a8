"""Keeping the bot token out of the logs.

The token is part of every Bot API URL, and libraries log those URLs:
python-telegram-bot at DEBUG ("Set Bot API URL: ...bot<token>"), httpx at
INFO for every request, and some errors quote it ("The token `...` was
rejected"). Levels alone cannot be trusted to hide it (a DEBUG run, a
library that changes its levels), so every log record is redacted when it is
created, whoever logs it and whatever handler prints it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

REDACTED = "<telegram-token>"

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False
_formatter = logging.Formatter()


def protect_token(token: str) -> None:
    """Redact `token` from every log record from now on; quiet httpx's one INFO line per request."""
    global _installed
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with _lock:
        _secrets.add(token)
        if not _installed:
            _install(logging.getLogRecordFactory())
            _installed = True


def redact(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


def _install(previous: Any) -> None:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is reported by the handler, as without us
        return
    if any(secret in message for secret in _secrets):
        record.msg, record.args = redact(message), None
    if record.exc_info:
        # Formatted now, once: handlers print `exc_text` when it is set instead of formatting again.
        text = _formatter.formatException(record.exc_info)
        if any(secret in text for secret in _secrets):
            record.exc_text = redact(text)
