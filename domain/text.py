"""Free text that may be recorded in the log: the one rule every boundary applies.

What a client types (a halt reason, a Telegram message, a client's address)
ends up in events and then in read-model rows. PostgreSQL refuses NUL in text
and neither database can encode a lone surrogate, so such a value would stop
a projection for good; the other control characters are refused too, since in
an audit log they hide or rewrite what a reader sees (terminal escapes,
carriage returns, backspaces). Tab and newline are ordinary text. Every field
also has a length limit, below; docs/api.md and docs/telegram.md list them.
"""

from __future__ import annotations

import re

from tradeledger.domain.errors import DomainError

MAX_REASON = 500  # why trading was halted or resumed (API and Telegram)
MAX_MESSAGE = 4096  # one Telegram message: Telegram's own limit
MAX_COMMAND = 64  # how much of a refused command is recorded
MAX_PEER = 200  # a client's address, as recorded in its session
MAX_SETTING = 1000  # a text setting (names and symbols are recorded in the log)

# C0 and C1 control characters except tab (09) and newline (0A), DEL, and lone surrogates.
_REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class InvalidText(DomainError, ValueError):
    """`field` may not be recorded as given; `problem` says why (without repeating the text)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def recordable(field: str, value: str, *, max_length: int) -> str:
    """`value` unchanged when it may be recorded; raises InvalidText otherwise."""
    if len(value) > max_length:
        raise InvalidText(field, f"at most {max_length} characters are accepted, got {len(value)}")
    refused = _REFUSED.search(value)
    if refused is not None:
        raise InvalidText(field, f"control character U+{ord(refused.group()):04X} at character {refused.start() + 1} "
                                 "is not accepted (tab and newline are the only ones allowed)")
    return value
