"""Control: halt and resume trading. Needs `Authorization: Bearer <api.token>`.

Without a configured token the endpoints answer 403 (control disabled), so a
server started without one can never be controlled over HTTP. The token is
compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from litestar import post
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_503_SERVICE_UNAVAILABLE

from tradeledger.adapters import control
from tradeledger.adapters.api.deps import ClockDep, SettingsDep, StoreDep
from tradeledger.adapters.api.errors import documented
from tradeledger.adapters.api.routes.params import recorded_text
from tradeledger.adapters.api.schemas import ControlRequest, ControlResult
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.domain.errors import AlreadyHalted, NotHalted
from tradeledger.domain.text import MAX_REASON
from tradeledger.settings import Settings

BY = "api"


class Conflict(ClientException):
    status_code = HTTP_409_CONFLICT


class Unavailable(ClientException):
    status_code = HTTP_503_SERVICE_UNAVAILABLE


def require_token(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    token: str | None = connection.app.state.api_token
    if token is None:
        raise PermissionDeniedException("control is disabled: no api.token is configured on this server")
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise NotAuthorizedException("a valid 'Authorization: Bearer <api.token>' header is required",
                                     headers={"WWW-Authenticate": "Bearer"})


def run_command(command: Callable[..., int], store: LedgerStore, settings: Settings, reason: str,
                at: datetime) -> int:
    reason = recorded_text("reason", reason, MAX_REASON)
    try:
        return command(store, settings.trading.account, reason=reason, by=BY, at=at)
    except (AlreadyHalted, NotHalted, control.AccountMissing) as error:
        raise Conflict(str(error)) from None
    except control.ConflictsPersisted as error:
        raise Unavailable(str(error)) from None


@post("/control/halt", guards=[require_token], sync_to_thread=True, status_code=200,
      responses=documented(400, 401, 403, 409, 503))
def halt(data: JSONBody[ControlRequest], store: StoreDep, settings: SettingsDep,
         clock: ClockDep) -> ControlResult:
    """Stop new entries: records TradingHalted(rule="manual", by="api"). 409 when already halted."""
    position = run_command(control.halt, store, settings, data.reason, clock())
    return ControlResult(action="halt", halted=True, position=position, by=BY, reason=data.reason)


@post("/control/resume", guards=[require_token], sync_to_thread=True, status_code=200,
      responses=documented(400, 401, 403, 409, 503))
def resume(data: JSONBody[ControlRequest], store: StoreDep, settings: SettingsDep,
           clock: ClockDep) -> ControlResult:
    """Allow entries again: records TradingResumed(by="api"). 409 when not halted."""
    position = run_command(control.resume, store, settings, data.reason, clock())
    return ControlResult(action="resume", halted=False, position=position, by=BY, reason=data.reason)


ROUTES = [halt, resume]
