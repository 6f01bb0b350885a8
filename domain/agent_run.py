"""One agent process's life: started, heartbeats, stopped."""

from __future__ import annotations

from datetime import datetime

import msgspec
from eventsourcing.domain import Aggregate

from tradeledger.domain import errors
from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.decisions import digest_of
from tradeledger.domain.ids import agent_run_id
from tradeledger.domain.values import require_utc


class InputFile(msgspec.Struct, frozen=True, kw_only=True):
    """A candle file a backtest or file replay read, as `AgentRun.Started` records it."""

    name: str  # the file's name, without its directory (which says nothing about its content)
    sha256: str  # hex


class AgentRun(LedgerAggregate):
    class Started(Aggregate.Created):
        version: str
        host: str
        pid: int
        config_digest: str
        components: tuple[str, ...]
        model: str
        decision_config: dict[str, str]
        # Added in 0.3 with defaults (older runs decode with them, and verify skips what they lack): the
        # SHA-256 of `decision_config` (`decisions.digest_of`; `config_digest` covers every public setting,
        # which the event does not hold), and for a backtest or file replay the input file's name and SHA-256.
        decision_digest: str = ""
        data_file: str = ""
        data_sha256: str = ""
        # Added with portfolios: every file read, in the order given (a run of one file also keeps the two
        # fields above, as before; a run of several leaves them empty). Use `input_files()` to read either.
        data_files: tuple[InputFile, ...] = ()

        def input_files(self) -> tuple[InputFile, ...]:
            if self.data_files or not self.data_sha256:
                return self.data_files
            return (InputFile(name=self.data_file, sha256=self.data_sha256),)

    class Heartbeat(Aggregate.Event):
        """`feed_lag`: seconds from the last candle's close to the feed's now (the exchange's clock for an
        exchange). Added in 0.3 with defaults (older heartbeats decode with them): the feed's source
        (`binance`, `SYNTHETIC`, `file:NAME`), its state as the agent judged it (`live`, `lagging`,
        `down`), the last candle's close and how often the feed reconnected."""

        at: datetime
        candles_processed: int
        feed_lag: float
        feed_source: str = ""
        feed_state: str = ""
        last_candle_at: datetime | None = None
        reconnects: int = 0

        def apply(self, run: AgentRun) -> None:
            run.last_heartbeat = self.at

    class StateSaved(Aggregate.Event):
        """A checkpoint of the trader and the aggregates (docs/agent.md, restarts): the state after the log
        event at position `covers`; the SHA-256 of its blob (`format`; kept beside the log, keyed by this
        event's position) and of the state's canonical encoding (what `reproduce` compares with the state it
        recomputes); the candles recorded by then, the position up to which every operator command issued was
        handled (`commands_read`: a restart reads the commands after it) and the release that wrote it."""

        covers: int
        sha256: str
        state_sha256: str
        candles: int
        commands_read: int
        format: str
        release: str

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
        decision_digest: str = "",
        data_file: str = "",
        data_sha256: str = "",
        data_files: tuple[InputFile, ...] = (),
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
        data: tuple[InputFile, ...] = (),
    ) -> AgentRun:
        """`decision_config` holds every setting a decision depends on, so a replay can use the same;
        `data` names the candle files a backtest or file replay reads."""
        single = data[0] if len(data) == 1 else InputFile(name="", sha256="")
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
            decision_digest=digest_of(decision_config),
            data_file=single.name,
            data_sha256=single.sha256,
            data_files=data,
            timestamp=require_utc("at", at),
        )

    def beat(self, *, at: datetime, candles_processed: int, feed_lag: float, feed_source: str = "",
             feed_state: str = "", last_candle_at: datetime | None = None, reconnects: int = 0) -> None:
        self._require_running()
        at = require_utc("at", at)
        self.trigger_event(
            self.Heartbeat, at=at, candles_processed=candles_processed, feed_lag=feed_lag, feed_source=feed_source,
            feed_state=feed_state, last_candle_at=last_candle_at, reconnects=reconnects, timestamp=at,
        )

    def save_state(self, *, covers: int, sha256: str, state_sha256: str, candles: int, commands_read: int,
                   format: str, release: str, at: datetime) -> None:
        self._require_running()
        at = require_utc("at", at)
        self.trigger_event(self.StateSaved, covers=covers, sha256=sha256, state_sha256=state_sha256,
                           candles=candles, commands_read=commands_read, format=format, release=release,
                           timestamp=at)

    def stop(self, *, reason: str, clean: bool, at: datetime) -> None:
        self._require_running()
        self.trigger_event(self.Stopped, reason=reason, clean=clean, timestamp=require_utc("at", at))

    def _require_running(self) -> None:
        if self.stopped:
            raise errors.DomainError(f"agent run {self.id} has already stopped")
