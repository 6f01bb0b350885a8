"""One agent process's life: started, heartbeats, stopped."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from tradeledger.domain import errors
from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.ids import agent_run_id
from tradeledger.domain.values import require_utc


class AgentRun(LedgerAggregate):
    class Started(Aggregate.Created):
        version: str
        host: str
        pid: int
        config_digest: str
        components: tuple[str, ...]
        model: str
        decision_config: dict[str, str]

    class Heartbeat(Aggregate.Event):
        at: datetime
        candles_processed: int
        feed_lag: float

        def apply(self, run: AgentRun) -> None:
            run.last_heartbeat = self.at

    class Stopped(Aggregate.Event):
        reason: str
        clean: bool

        def apply(self, run: AgentRun) -> None:
            run.stopped = True

    def __init__(
        self,
        version: str,
        host: str,
        pid: int,
        config_digest: str,
        components: tuple[str, ...],
        model: str,
        decision_config: dict[str, str],
    ) -> None:
        self.host = host
        self.pid = pid
        self.config_digest = config_digest
        self.last_heartbeat: datetime | None = None
        self.stopped = False

    @classmethod
    def start(
        cls,
        *,
        key: str,
        version: str,
        host: str,
        pid: int,
        config_digest: str,
        components: tuple[str, ...],
        model: str,
        decision_config: dict[str, str],
        at: datetime,
    ) -> AgentRun:
        """`decision_config` holds every setting a decision depends on, so a replay can use the same."""
        return cls._create(
            cls.Started,
            id=agent_run_id(key),
            version=version,
            host=host,
            pid=pid,
            config_digest=config_digest,
            components=components,
            model=model,
            decision_config=decision_config,
            timestamp=require_utc("at", at),
        )

    def beat(self, *, at: datetime, candles_processed: int, feed_lag: float) -> None:
        self._require_running()
        at = require_utc("at", at)
        self.trigger_event(
            self.Heartbeat, at=at, candles_processed=candles_processed, feed_lag=feed_lag, timestamp=at
        )

    def stop(self, *, reason: str, clean: bool, at: datetime) -> None:
        self._require_running()
        self.trigger_event(self.Stopped, reason=reason, clean=clean, timestamp=require_utc("at", at))

    def _require_running(self) -> None:
        if self.stopped:
            raise errors.DomainError(f"agent run {self.id} has already stopped")
