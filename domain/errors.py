"""Domain errors: each names what was wrong and why, so callers can show it."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class for every rule the domain refuses to break."""


class InvalidValue(DomainError, ValueError):
    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {value!r})")


class InsufficientFunds(DomainError):
    pass


class InsufficientPosition(DomainError):
    pass


class TradingIsHalted(DomainError):
    pass


class UnknownOrder(DomainError):
    pass


class OrderNotOpen(DomainError):
    pass


class AlreadyHalted(DomainError):
    pass


class NotHalted(DomainError):
    pass


class CandleOutOfOrder(DomainError):
    pass


class EntriesUnchanged(DomainError):
    """stop_entry while stopped, or start_entry while entries are allowed."""
