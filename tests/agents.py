"""The trading session and the control commands wired as the composition root wires them, for tests."""

from __future__ import annotations

from datetime import datetime

from tradeledger.adapters.lease import lease_for
from tradeledger.adapters.services.control import Control, Outcome
from tradeledger.adapters.services.ports import Clock, EventLogPort, utcnow
from tradeledger.adapters.services.trading import TradingSession
from tradeledger.adapters.traders import build_trader
from tradeledger.settings import Settings


def session(log: EventLogPort, settings: Settings, *, clock: Clock = utcnow) -> TradingSession:
    """A trading session on the store of `settings.database.url`, not resumed."""
    return TradingSession(log, settings, lambda: build_trader(settings), lease_for(settings.database.url),
                          clock=clock)


def resumed(log: EventLogPort, settings: Settings, *, clock: Clock = utcnow) -> TradingSession:
    """A session that took the lease and replayed the log: ready to `start`."""
    agent = session(log, settings, clock=clock)
    agent.resume()
    return agent


def command(log: EventLogPort, url: str, action: str, *, reason: str, by: str = "api", account: str = "paper",
            at: datetime | None = None, wait: float = 5.0) -> Outcome:
    """Issue a halt or resume as the API does; applied at once when no agent holds the lease."""
    control = Control(log, lambda: lease_for(url), account, wait=wait)
    return control.issue(action, reason=reason, by=by, channel="test", at=at or utcnow())
