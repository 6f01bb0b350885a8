"""Control: halt and resume trading. Needs `Authorization: Bearer <api.token>`.

Without a configured token the endpoints answer 403 (control disabled), so a
server started without one can never be controlled over HTTP. The token is
compared in constant time.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from litestar import Response, post
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_409_CONFLICT

from tradeledger.adapters.api.deps import ClockDep, CommandsDep
from tradeledger.adapters.api.errors import documented
from tradeledger.adapters.api.routes.params import recorded_text
from tradeledger.adapters.services.views import ControlRequest, ControlResult
from tradeledger.adapters.services import control
from tradeledger.adapters.services.control import Control
from tradeledger.domain.control import HALT, RESUME
from tradeledger.domain.text import MAX_REASON

BY = "api"
CHANNEL = "http"


RESPONSES = {202: ResponseSpec(data_container=ControlResult, description="issued; the agent has not applied it "
                                                                     "within the wait (status 'pending')"),
             **documented(400, 401, 403, 409)}


class Conflict(ClientException):
    status_code = HTTP_409_CONFLICT


def require_token(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    token: str | None = connection.app.state.api_token
    if token is None:
        raise PermissionDeniedException("control is disabled: no api.token is configured on this server")
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise NotAuthorizedException("a valid 'Authorization: Bearer <api.token>' header is required",
                                     headers={"WWW-Authenticate": "Bearer"})


def run_command(commands: Control, command: str, reason: str, at: datetime) -> Response[ControlResult]:
    reason = recorded_text("reason", reason, MAX_REASON)
    try:
        outcome = commands.issue(command, reason=reason, by=BY, channel=CHANNEL, at=at)
    except control.AccountMissing as error:
        raise Conflict(str(error)) from None
    if outcome.status == "refused":
        raise Conflict(outcome.reason)
    applied = outcome.status == "applied"
    result = ControlResult(action=command, status=outcome.status, command_id=outcome.command_id,
                           halted=command == HALT, position=outcome.position if applied else outcome.issued,
                           by=BY, reason=reason)
    return Response(result, status_code=HTTP_200_OK if applied else HTTP_202_ACCEPTED)


@post("/control/halt", guards=[require_token], sync_to_thread=True, status_code=200, responses=RESPONSES)
def halt(data: JSONBody[ControlRequest], commands: CommandsDep, clock: ClockDep) -> Response[ControlResult]:
    """Stop new entries: issues a halt command; 200 once the agent recorded TradingHalted(rule="manual",
    by="api"), 202 if it has not within the wait (docs/api.md). 409 when already halted."""
    return run_command(commands, HALT, data.reason, clock())


@post("/control/resume", guards=[require_token], sync_to_thread=True, status_code=200, responses=RESPONSES)
def resume(data: JSONBody[ControlRequest], commands: CommandsDep, clock: ClockDep) -> Response[ControlResult]:
    """Allow entries again: issues a resume command; 200 once TradingResumed(by="api") is recorded, 202 if
    not yet (docs/api.md). 409 when not halted."""
    return run_command(commands, RESUME, data.reason, clock())


ROUTES = [halt, resume]
