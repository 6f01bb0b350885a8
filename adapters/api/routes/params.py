"""Query parameters shared by several routes, with the bounds the OpenAPI schema documents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from tradeledger.adapters.services.views import MAX_POSITION
from tradeledger.domain.text import InvalidText, recordable

MAX_LIMIT = 1000

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"at most this many items (1..{MAX_LIMIT})")]
After = Annotated[int, QueryParameter(ge=0, le=MAX_POSITION,
                                      description="only what comes after this log position")]


def bad_request(field: str, message: str) -> ValidationException:
    """Raised like Litestar's own validation errors, so every 400 has the same shape."""
    return ValidationException(detail=f"{field}: {message}", extra=[{"key": field, "message": message}])


def recorded_text(field: str, value: str, max_length: int) -> str:
    """Text that will be recorded in the log: 400 naming the field unless `domain.text` accepts it."""
    try:
        return recordable(field, value, max_length=max_length)
    except InvalidText as error:
        raise bad_request(error.field, error.problem) from None


def utc(field: str, value: datetime | None) -> datetime | None:
    """Times must say their offset: a naive time could mean anything."""
    if value is not None and value.utcoffset() is None:
        raise bad_request(field, f"expected an ISO-8601 time with an offset (e.g. {value.isoformat()}Z)")
    return value


def ordered(start_field: str, start: object, end_field: str, end: object) -> None:
    if start is not None and end is not None and start > end:  # type: ignore[operator]
        raise bad_request(end_field, f"must not be before {start_field}")
