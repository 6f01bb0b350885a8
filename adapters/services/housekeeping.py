"""Housekeeping: closing the sessions of gateways whose process died.

A gateway killed with -9 records nothing, so its sessions would stay open
forever in the connections read model. `DeadGateways.close` finds gateways on
this host that have not stopped but whose process (the pid in Gateway.Started)
no longer exists, and records Gateway.stop for them (which disconnects each
session in the log; the connections projection then closes them). Gateways on
other hosts are left to a process on their own host: from here we cannot tell
a dead remote process from a live one. The projector loop runs it each round.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError

from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.adapters.services.ports import Clock
from tradeledger.domain.errors import DomainError
from tradeledger.domain.gateway import Gateway
from tradeledger.projections import sql
from tradeledger.projections.connections_rows import GATEWAYS, GatewayRow

logger = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def dead_gateways(gateways: Iterable[GatewayRow], *, host: str, is_alive: Callable[[int], bool]) -> list[GatewayRow]:
    """Gateways on `host` that never recorded Stopped but whose process is gone."""
    return [g for g in gateways if g.stopped_at is None and g.host == host and not is_alive(g.pid)]


class DeadGateways:
    def __init__(self, store: LedgerStore, engine: sa.Engine, *, clock: Clock,
                 is_alive: Callable[[int], bool] = pid_alive) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self.is_alive = is_alive

    def close(self) -> list[UUID]:
        """Record Gateway.stop for each dead gateway on this host; the ids it stopped."""
        host = socket.gethostname()
        with self.engine.connect() as conn:
            gateways = sql.row_source(conn)(GATEWAYS)
        closed = []
        for row in dead_gateways(gateways, host=host, is_alive=self.is_alive):
            gateway: Gateway = self.store.repository.get(row.gateway_id)
            try:
                gateway.stop(reason=f"process {row.pid} on {host} is gone", at=self.clock())
                self.store.save(gateway)
            except (DomainError, IntegrityError) as error:
                # Stopped meanwhile (by itself or another closer): nothing is left to close.
                logger.info("gateway %s was already stopped: %s", row.gateway_id, error)
                continue
            closed.append(row.gateway_id)
        return closed
