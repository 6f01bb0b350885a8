"""Checkpoints of the agent's state, so that a restart replays only the log after the latest one (docs/agent.md).

Every `agent.checkpoint_every` candles and on a clean stop the session encodes what the trader keeps (its
models, features, risk and exits state, pending-limit bookkeeping: every attribute but its configuration)
and the Account and Market aggregates (`encode`), appends `AgentRun.StateSaved` with the log position the
state covers and the SHA-256 of the encoding, then stores the blob in `state_checkpoints` keyed by that
event's position. The hash chain and the Merkle tree cover the digest, so a rewritten blob is detected.

A restart (`latest`) takes the newest checkpoint written by this release whose blob matches its digest and
replays the events after it (`services.reproduce`); one that fails is refused with a warning naming why, and
the one before it is tried, down to a full replay. `reproduce` replays from the start and compares each
checkpoint with the state it recomputed at that position (`Checks`), so a checkpoint cannot hide a divergence.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.adapters.services.ports import EventLogPort, scan
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.control import ControlCommand
from tradeledger.domain.market import Market
from tradeledger.domain.trader import Trader

logger = logging.getLogger(__name__)

FORMAT = "tradeledger-state-v1"  # the blob: a pickle (protocol 5) of `state()`; its digest: `canonical()`
PROTOCOL = 5
# The Trader's constructor arguments: what the settings give it, not what its history made. A restored
# trader keeps the fresh one's (the recorded decision settings are enforced on resume).
CONFIGURATION = frozenset({"model_factory", "rules", "broker", "sizing", "exit_rules", "orders"})
SESSIONS = "sessions"  # the calendar every market model shares: configuration, referred to by name
IMMUTABLE = (str, bytes, int, float, complex, Decimal, datetime, date, time, timedelta, tzinfo, tuple, frozenset,
             Enum, UUID)
TABLE = "state_checkpoints"  # migration 0013


class CheckpointError(RuntimeError):
    pass


class Referring(pickle.Pickler):
    """pickle, writing configuration objects (`references`: id -> name) by name (resolved again on load)."""

    def __init__(self, file: io.BytesIO, references: dict[int, str]) -> None:
        super().__init__(file, PROTOCOL)
        self.references = references

    def persistent_id(self, obj: Any) -> str | None:
        return self.references.get(id(obj))


class Canonical(pickle._Pickler):  # type: ignore[misc, name-defined]  # the Python pickler: every object overridable
    """A pickle that is the same bytes for the same state in any process: what `reproduce` compares.

    The C pickler's bytes depend on which immutable objects happen to be shared (a symbol string from the
    feed, or one per decoded event) and on set iteration order (string hashing is randomised per process), so
    immutable values are written without memo entries and sets sorted by their elements' own encodings;
    mutable objects keep theirs (their sharing is part of the state). A `random.Random` is written without
    its state: river's Gaussian estimators each carry an unseeded one they never draw from, and a seeded
    one that is drawn from shows in the decisions, which reproduce compares anyway."""

    def __init__(self, file: io.BytesIO, references: dict[int, str]) -> None:
        super().__init__(file, 4)
        self.references = references

    def persistent_id(self, obj: Any) -> str | None:
        return self.references.get(id(obj))

    def memoize(self, obj: Any) -> None:
        if not (isinstance(obj, IMMUTABLE) or isinstance(obj, msgspec.Struct) and obj.__struct_config__.frozen):
            super().memoize(obj)

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in (set, frozenset):
            return type(obj), (sorted(obj, key=lambda member: dumped(Canonical, member, self.references)),)
        if isinstance(obj, random.Random):
            return random.Random, ()
        return NotImplemented


def dumped(pickler: type[Referring] | type[Canonical], value: Any, references: dict[int, str]) -> bytes:
    buffer = io.BytesIO()
    pickler(buffer, references).dump(value)
    return buffer.getvalue()


class Unpickler(pickle.Unpickler):
    def __init__(self, blob: bytes, resolve: Callable[[str], Any]) -> None:
        super().__init__(io.BytesIO(blob))
        self.resolve = resolve

    def persistent_load(self, pid: Any) -> Any:
        return self.resolve(pid)


class State(NamedTuple):
    """What a checkpoint holds: the trader's state, the account and the markets (in symbol order)."""

    trader: dict[str, Any]
    account: Account
    markets: list[Market]


def state(trader: Trader, account: Account, markets: Iterable[Market]) -> tuple[Any, ...]:
    return tuple(State({k: v for k, v in vars(trader).items() if k not in CONFIGURATION}, account,
                       sorted(markets, key=lambda m: (m.symbol, m.timeframe))))


def references(trader: Trader) -> dict[int, str]:
    return {id(model.engine.sessions): SESSIONS for model in trader.models.values()}


def blob_of(trader: Trader, account: Account, markets: Iterable[Market]) -> bytes:
    return dumped(Referring, state(trader, account, markets), references(trader))


def canonical(trader: Trader, account: Account, markets: Iterable[Market]) -> bytes:
    return dumped(Canonical, state(trader, account, markets), references(trader))


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def decoded(blob: bytes, trader_factory: Callable[[], Trader]) -> tuple[Trader, State]:
    """A fresh trader with the checkpoint's state, and that state."""
    trader = trader_factory()
    resolved = Unpickler(blob, lambda name: trader.model_factory().engine.sessions if name == SESSIONS
                         else _unknown(name)).load()
    saved = State(*resolved)
    vars(trader).update(saved.trader)
    return trader, saved


def _unknown(name: str) -> Any:
    raise CheckpointError(f"the checkpoint refers to an unknown configuration object {name!r}")


class Blobs:
    """The checkpoints' blobs beside the log (`state_checkpoints`, migration 0013), by their event's position.

    A store migrated before 0013 (read by `reproduce` without migrating) has no table: it holds no blob."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def put(self, position: int, covers: int, blob: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO {TABLE} (position, covers, state) VALUES (:p, :c, :s)"),
                         {"p": position, "c": covers, "s": blob})

    def get(self, position: int) -> bytes | None:
        # SQLite keeps whatever type was written: a blob rewritten as text must still read as bytes.
        state = "CAST(state AS BLOB)" if self.engine.dialect.name == "sqlite" else "state"
        row = self.query(f"SELECT {state} FROM {TABLE} WHERE position = :p", p=position)
        return None if not row else bytes(row[0][0])

    def newest_first(self) -> list[int]:
        return [position for (position,) in self.query(f"SELECT position FROM {TABLE} ORDER BY position DESC")]

    def query(self, sql: str, **params: Any) -> list[Any]:
        if not sa.inspect(self.engine).has_table(TABLE):
            return []
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))


class Restored(NamedTuple):
    """A checkpoint loaded for a restart: the state after log position `covers`, and the commands issued up
    to there that the account has not handled yet (the replay after it decides them at their CommandApplied);
    every command issued up to `commands_read` was handled."""

    trader: Trader
    account: Account
    markets: list[Market]
    covers: int
    candles: int
    commands_read: int
    commands: dict[UUID, ControlCommand.Issued]


def saved_at(log: EventLogPort, position: int) -> AgentRun.StateSaved | None:
    page = log.read(position - 1, 1, [AgentRun.StateSaved])
    return page[0].event if page and page[0].position == position else None


def refusal(event: AgentRun.StateSaved | None, blob: bytes | None, release: str) -> str | None:
    if event is None:
        return "no StateSaved event is recorded at its position"
    if (event.format, event.release) != (FORMAT, release):
        return f"it was written by release {event.release} in {event.format} (this is {release} in {FORMAT})"
    if blob is None or digest(blob) != event.sha256:
        return "its blob does not match the SHA-256 its StateSaved event records"
    return None


def latest(log: EventLogPort, blobs: Blobs, trader_factory: Callable[[], Trader], release: str) -> Restored | None:
    """The newest usable checkpoint, refusing (with a warning) every newer one that is not; None: replay all."""
    for position in blobs.newest_first():
        event, blob = saved_at(log, position), blobs.get(position)
        problem = refusal(event, blob, release)
        if problem is None:
            assert event is not None and blob is not None
            try:
                trader, saved = decoded(blob, trader_factory)
            except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is refused, not fatal
                problem = f"it cannot be loaded: {type(error).__name__}: {error}"
            else:
                logger.info("resuming from the checkpoint at position %d (state after position %d)",
                         position, event.covers)
                read = max(saved.account.last_command_position, event.commands_read)
                return Restored(trader, saved.account, saved.markets, event.covers, event.candles, read,
                                pending_commands(log, read, event.covers))
        log_refusal(position, problem)
    return None


def log_refusal(position: int, problem: str) -> None:
    logger.warning("refusing the checkpoint at position %d: %s; trying an older one, else a full replay",
                position, problem)


def pending_commands(log: EventLogPort, read: int, covers: int) -> dict[UUID, ControlCommand.Issued]:
    """Scanned from `read`, not from the account's last handled command: a store where no command was ever
    issued would be read whole."""
    return {r.event.originator_id: r.event for r in scan(log, read, [ControlCommand.Issued]) if r.position <= covers}


class Checkpoints:
    """The session's checkpointing: due every `every` candles (0: only on a clean stop)."""

    def __init__(self, log: EventLogPort, blobs: Blobs, *, every: int, release: str) -> None:
        self.log = log
        self.blobs = blobs
        self.every = every
        self.release = release
        self.covered = 0  # the position the newest checkpoint covers
        self.candles = 0  # the candles recorded when it was written

    def resumed(self, covers: int, candles: int) -> None:
        self.covered, self.candles = covers, candles

    def restore(self, trader_factory: Callable[[], Trader]) -> Restored | None:
        """The latest usable checkpoint (None: replay everything), from which the next one is counted."""
        restored = latest(self.log, self.blobs, trader_factory, self.release)
        self.resumed(*((restored.covers, restored.candles) if restored is not None else (0, 0)))
        return restored

    def due(self, markets: Iterable[Market]) -> bool:
        return self.every > 0 and sum(m.candles_closed for m in markets) - self.candles >= self.every

    def save(self, run: AgentRun, covers: int, commands_read: int, trader: Trader, account: Account,
             markets: list[Market], at: datetime) -> None:
        """Append StateSaved for the state after `covers` (every command issued up to `commands_read` handled),
        then its blob; a state that cannot be encoded (a user strategy holding something pickle refuses) is
        skipped with a warning: restarts replay more."""
        candles = sum(m.candles_closed for m in markets)
        try:
            blob, canon = blob_of(trader, account, markets), canonical(trader, account, markets)
        except Exception as error:  # noqa: BLE001 - a checkpoint is an optimisation, never a reason to stop
            logger.warning("no checkpoint at position %d: the state cannot be encoded: %s", covers, error)
            self.resumed(covers, candles)
            return
        run.save_state(covers=covers, sha256=digest(blob), state_sha256=digest(canon), candles=candles,
                       commands_read=commands_read, format=FORMAT, release=self.release, at=at)
        self.blobs.put(self.log.append(run.collect_events()), covers, blob)
        self.resumed(covers, candles)


class Checks:
    """`reproduce`'s comparison of every recorded checkpoint with the state the replay recomputed."""

    def __init__(self, log: EventLogPort, blobs: Blobs | None) -> None:
        self.blobs = blobs
        self.saved: dict[int, list[tuple[int, AgentRun.StateSaved]]] = {}
        for recorded in scan(log, types=[AgentRun.StateSaved]):
            self.saved.setdefault(recorded.event.covers, []).append((recorded.position, recorded.event))

    def at(self, covers: int, trader: Trader, account: Account | None, markets: Iterable[Market]
           ) -> Iterator[tuple[int, AgentRun.StateSaved, str]]:
        """(position, event, what is wrong) for each wrong checkpoint of the state after `covers`."""
        checkpoints = self.saved.get(covers, [])
        recomputed = digest(canonical(trader, account, markets)) if checkpoints and account is not None else None
        for position, event in checkpoints:
            blob = None if self.blobs is None else self.blobs.get(position)
            if blob is not None and digest(blob) != event.sha256:
                yield position, event, "its blob does not match the SHA-256 its StateSaved event records"
            if recomputed != event.state_sha256:
                yield position, event, (f"the state it records (SHA-256 {event.state_sha256[:12]}...) is not the "
                                        f"state the replay recomputed at position {covers} (SHA-256 "
                                        f"{str(recomputed)[:12]}...)")
