"""Errors as JSON bodies that name the field: `{"status_code", "detail", "field"}`.

Litestar reports a bad parameter or body as a ValidationException whose
`extra` lists the offending keys; the handler here lifts the first key into
`field` and into the message, so the caller reads at once what to fix.
Unexpected errors are logged with their traceback and answered with a 500
that says nothing about the internals.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from tradeledger.adapters.services.views import ErrorBody

log = logging.getLogger(__name__)

MEANING = {
    400: "bad input: `field` names the parameter or body field and `detail` says why",
    401: "missing or wrong bearer token",
    403: "control is disabled on this server (no api.token configured)",
    404: "not found (yet): `detail` says what",
    409: "the command does not apply to the current state (e.g. already halted)",
    503: "the command lost the write race too often; try again",
}


def documented(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error responses a route can give, all with the ErrorBody shape."""
    return {code: ResponseSpec(data_container=ErrorBody, description=MEANING[code]) for code in codes}


def error_response(status_code: int, detail: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(status_code=status_code, detail=detail, field=field), status_code=status_code,
                    headers=headers)


def validation_error(request: Request[Any, Any, Any], error: ValidationException) -> Response[ErrorBody]:
    problems = error.extra if isinstance(error.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    field = public_name(request, first["key"]) if first.get("key") else None
    message = first.get("message") or error.detail
    detail = f"{field}: {message}" if field else str(message)
    return error_response(HTTP_400_BAD_REQUEST, detail, field)


def public_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name the client used: `?from=` is the handler's `start` (a Python keyword cannot be a parameter)."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    return getattr(getattr(parameter, "kwarg_definition", None), "name", None) or key


def http_error(_request: Request[Any, Any, Any], error: HTTPException) -> Response[ErrorBody]:
    return error_response(error.status_code, error.detail, headers=error.headers)


def internal_error(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=error)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal error (logged on the server)")


HANDLERS: ExceptionHandlersMap = {
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: internal_error,
}
