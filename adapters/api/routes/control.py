"""Control: halt and resume trading, stop and start entries, force an exit or an entry.
Needs `Authorization: Bearer <api.token>`.

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
from tradeledger.adapters.api.routes.params import bad_request, recorded_text
from tradeledger.adapters.services.views import ControlRequest, ControlResult, ForceRequest
from tradeledger.adapters.services import control
from tradeledger.adapters.services.control import Control
from tradeledger.domain.control import FORCE_ENTER, FORCE_EXIT, HALT, RESUME, START_ENTRY, STOP_ENTRY
from tradeledger.domain.errors import InvalidValue
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


def run_command(commands: Control, command: str, reason: str, at: datetime, symbol: str = ""
                ) -> Response[ControlResult]:
    reason = recorded_text("reason", reason, MAX_REASON) if reason else reason
    try:
        outcome = commands.issue(command, reason=reason, by=BY, channel=CHANNEL, at=at, symbol=symbol)
    except control.AccountMissing as error:
        raise Conflict(str(error)) from None
    except InvalidValue as error:
        raise bad_request("symbol", str(error)) from None
    if outcome.status == "refused":
        raise Conflict(outcome.reason)
    applied = outcome.status == "applied"
    result = ControlResult(action=command, status=outcome.status, command_id=outcome.command_id,
                           halted=command == HALT, position=outcome.position if applied else outcome.issued,
                           by=BY, reason=reason, symbol=symbol)
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


@post("/control/stop-entry", guards=[require_token], sync_to_thread=True, status_code=200, responses=RESPONSES)
def stop_entry(data: JSONBody[ControlRequest], commands: CommandsDep, clock: ClockDep) -> Response[ControlResult]:
    """Reject new entries while exits (signals, stops, force-exit) go on: 200 once EntriesSwitched(stopped)
    is recorded, 202 if not yet. 409 when entries are already stopped."""
    return run_command(commands, STOP_ENTRY, data.reason, clock())


@post("/control/start-entry", guards=[require_token], sync_to_thread=True, status_code=200, responses=RESPONSES)
def start_entry(data: JSONBody[ControlRequest], commands: CommandsDep, clock: ClockDep) -> Response[ControlResult]:
    """Allow entries again after stop-entry: 200 once recorded, 202 if not yet. 409 when not stopped."""
    return run_command(commands, START_ENTRY, data.reason, clock())


@post("/control/force-exit", guards=[require_token], sync_to_thread=True, status_code=200, responses=RESPONSES)
def force_exit(data: JSONBody[ForceRequest], commands: CommandsDep, clock: ClockDep) -> Response[ControlResult]:
    """Sell the position in `symbol` ("all": every position) at the next candle's open, exit reason
    force_exit; pending entries there are dropped. 200 once the agent placed the order, 202 if not yet;
    409 when there is nothing to exit or no agent runs."""
    return run_command(commands, FORCE_EXIT, data.reason, clock(), data.symbol)


@post("/control/force-enter", guards=[require_token], sync_to_thread=True, status_code=200, responses=RESPONSES)
def force_enter(data: JSONBody[ForceRequest], commands: CommandsDep, clock: ClockDep) -> Response[ControlResult]:
    """Buy `symbol` at the next candle's open with the normal sizing. 200 once the agent placed (or a rule
    rejected) the order, 202 if not yet; 409 when in a position already, halted, entries stopped, the
    symbol unknown or no agent runs."""
    return run_command(commands, FORCE_ENTER, data.reason, clock(), data.symbol)


ROUTES = [halt, resume, stop_entry, start_entry, force_exit, force_enter]
