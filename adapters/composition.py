"""The composition root: the one place that turns settings into the running system.

It builds each piece on first use, exactly once (store, engine, event log,
read models, health, housekeeping), and from them the projection runner, the
trading session, the API app and the Telegram bot, whose entrypoints receive
their collaborators built. Building has no side effect: migrating the database
is the explicit `migrate()` step, and only the CLI imports this module.
`run` is the embedded system (docs/architecture.md, "Failure policy of run").

Each builder imports the modules of what it builds, so a command loads only the
pieces it uses: `tradeledger health` no fold, no event class and no trader
(the start-up figures are in docs/benchmarks.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING

from tradeledger.adapters import database
from tradeledger.adapters.services.ports import utcnow

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from litestar import Litestar
    from sqlalchemy import Engine

    from tradeledger.adapters.candlefiles import Given
    from tradeledger.adapters.eventlog import EventLog
    from tradeledger.adapters.eventstore import LedgerStore
    from tradeledger.adapters.exchange import Exchange
    from tradeledger.adapters.healthfile import HealthFile
    from tradeledger.adapters.lease import Lease
    from tradeledger.adapters.services.checkpointing import Blobs
    from tradeledger.adapters.services.control import Control
    from tradeledger.adapters.services.health import Health
    from tradeledger.adapters.services.housekeeping import DeadGateways
    from tradeledger.adapters.services.notary import Notary
    from tradeledger.adapters.services.ports import Clock
    from tradeledger.adapters.services.queries import ReadModelQueries
    from tradeledger.adapters.services.trading import TradingSession
    from tradeledger.adapters.strategies import Strategy
    from tradeledger.adapters.supervisor import Failure
    from tradeledger.adapters.telegram.bot import TelegramBot, Tuning
    from tradeledger.domain.trader import Trader
    from tradeledger.projections.fold import Projection
    from tradeledger.projections.runner import ProjectionRunner, ProjectionStatus
    from tradeledger.settings import Settings

RUN_HOUSEKEEPING_SECONDS = 5.0  # `run`: how often the projector closes the sessions of dead gateways


class Composition:
    """Builds each piece on first use and closes what it opened, in reverse order."""

    def __init__(self, settings: Settings, *, clock: Clock = utcnow, read_only: bool = False,
                 durable: bool = True) -> None:
        """`clock`: the wall clock that stamps each append with its recorded time. `read_only`: the store and
        the engine open the database so that nothing can write it (the audits; `database.check_store` first).
        `durable=False`: the event store's commits survive a killed process but not a power loss (a backtest,
        which is run again from its files; `adapters.eventstore.open_store`), and a new SQLite store is made
        for bulk appends (`database.BULK_PAGE_SIZE`)."""
        self.settings = settings
        self.clock = clock
        self.url = settings.database.url
        self.read_only = read_only
        self.durable = durable

    def migrate(self) -> None:
        """Bring the database schema to head (under the migration lock)."""
        database.upgrade(self.url, page_size=None if self.durable else database.BULK_PAGE_SIZE)

    # -- infrastructure -----------------------------------------------------------

    @cached_property
    def store(self) -> LedgerStore:
        from tradeledger.adapters.eventstore import open_store

        if not self.read_only:
            database.ensure_sqlite_directory(self.url)
        return open_store(self.url, clock=self.clock, read_only=self.read_only, durable=self.durable)

    @cached_property
    def engine(self) -> Engine:
        return database.create_db_engine(self.url, read_only=self.read_only, pool_pre_ping=True)

    @cached_property
    def feed(self) -> EventLog:
        from tradeledger.adapters.eventlog import EventLog

        return EventLog(self.store, self.engine)

    # -- services -----------------------------------------------------------------

    @cached_property
    def read_models(self) -> ReadModelQueries:
        from tradeledger.adapters.services.queries import ReadModelQueries

        return ReadModelQueries(self.engine, self.settings.trading.account)

    @cached_property
    def health(self) -> Health:
        from tradeledger.adapters.services.health import Health

        return Health(head=lambda: database.log_head(self.engine), engine=self.engine,
                      heartbeat_interval=self.settings.agent.heartbeat_interval, clock=self.clock)

    def signing_key(self) -> Ed25519PrivateKey | None:
        """The notary's key from `audit.signing_key` (None when unset); KeyFileError when it is unusable."""
        from tradeledger.adapters.checkpoints import load_private_key

        path = self.settings.audit.signing_key
        return None if path is None else load_private_key(path)

    @cached_property
    def notary(self) -> Notary:
        from tradeledger.adapters.services.notary import Notary

        audit = self.settings.audit
        return Notary(self.feed, self.engine, key=self.signing_key, every=audit.checkpoint_every,
                      directory=audit.checkpoint_dir, clock=self.clock)

    def checkpoint_on_stop(self) -> None:
        """A clean stop is sealed: the tree brought to the head and signed (when a key is configured)."""
        if self.settings.audit.signing_key is not None:
            self.notary.checkpoint()

    def housekeeping(self) -> None:
        """What the projector runs each round besides the projections: dead gateways, the Merkle tree."""
        self.dead_gateways.close()
        self.notary.advance()

    @cached_property
    def dead_gateways(self) -> DeadGateways:
        from tradeledger.adapters.services.housekeeping import DeadGateways

        return DeadGateways(self.store, self.engine, clock=self.clock)

    def health_file(self) -> HealthFile | None:
        from tradeledger.adapters.healthfile import HealthFile

        path = self.settings.projections.health_file
        return HealthFile(path, self.health.report) if path else None

    def runner(self, projections: Iterable[Projection] | None = None, *, page_size: int | None = None,
               on_progress: Callable[[list[ProjectionStatus]], None] | None = None) -> ProjectionRunner:
        """The runner of `projections` (default: all of them) in pages of `page_size` events."""
        from tradeledger.projections.registry import PROJECTIONS
        from tradeledger.projections.runner import PAGE_SIZE, ProjectionRunner

        return ProjectionRunner(self.feed, self.engine, tuple(PROJECTIONS if projections is None else projections),
                                page_size=page_size or PAGE_SIZE, poll_interval=self.settings.projections.poll_interval,
                                on_progress=on_progress)

    def run_projector(self, *, stop: threading.Event, report: Callable[[str], None], every: float,
                      page_size: int | None = None) -> None:
        """The runner (writing the health file on progress) with housekeeping, until `stop` is set."""
        from tradeledger.adapters.services.readmodels import run_projector

        run_projector(self.runner(page_size=page_size, on_progress=self.health_file()), stop=stop, report=report,
                      every=every, housekeeping=self.housekeeping)

    def lease(self) -> Lease:
        """A new handle on the store's agent lease (one per holder: it is not shared between threads)."""
        from tradeledger.adapters.lease import lease_for

        return lease_for(self.url)

    @cached_property
    def control(self) -> Control:
        from tradeledger.adapters.services.control import Control

        return Control(self.feed, self.lease, self.settings.trading.account)

    def exchange(self) -> Exchange:
        """A client of `exchange.name` (no network until it is used); ExchangeError when none is set."""
        from tradeledger.adapters.exchange import Exchange, ExchangeError

        e = self.settings.exchange
        if e.name is None:
            raise ExchangeError("no exchange: set exchange.name (e.g. binance) or pass --exchange")
        return Exchange(e.name, api_url=e.api_url, timeout=e.timeout, retries=e.retries)

    def paced_settings(self, data: Given) -> tuple[Exchange | None, Settings]:
        """The exchange a paced agent trades (None: the files of `data`, else the synthetic market) and the
        settings for it; with an exchange, its markets are loaded here (ExchangeError when it cannot be)."""
        from tradeledger.adapters.livefeed import live_settings
        from tradeledger.adapters.markets import feed_settings

        if not data and self.settings.exchange.name is not None:
            exchange = self.exchange()
            return exchange, live_settings(self.settings, exchange)
        return None, feed_settings(self.settings, data)

    def trader_factory(self, settings: Settings, strategy: Strategy | None = None) -> Callable[[], Trader]:
        """New traders; the user strategy of `strategy.path` is loaded here unless it is given loaded."""
        from tradeledger.adapters.strategies import resolved
        from tradeledger.adapters.traders import build_trader

        if strategy is None:
            strategy, settings = resolved(settings)
        return lambda: build_trader(settings, strategy)

    def agent(self, settings: Settings, *, checkpoint_every: int | None = None) -> TradingSession:
        """The trading session (not resumed yet: `resume()` takes the lease and replays the log). A user
        strategy is loaded here, once, and its identity goes into the session's settings (recorded, and
        compared with the store's history on resume); StrategyError when it cannot be used.
        `checkpoint_every`: candles between state checkpoints instead of `agent.checkpoint_every` (0: only
        on a clean stop)."""
        from tradeledger.adapters.release import VERSION
        from tradeledger.adapters.services.checkpointing import Checkpoints
        from tradeledger.adapters.services.trading import TradingSession
        from tradeledger.adapters.strategies import resolved

        strategy, settings = resolved(settings)
        every = settings.agent.checkpoint_every if checkpoint_every is None else checkpoint_every
        checkpoints = Checkpoints(self.feed, self.checkpoint_blobs, every=every, release=VERSION)
        return TradingSession(self.feed, settings, self.trader_factory(settings, strategy), self.lease(),
                              clock=self.clock, checkpoints=checkpoints)

    @cached_property
    def checkpoint_blobs(self) -> Blobs:
        """The agent's state checkpoints beside the log (services.checkpointing)."""
        from tradeledger.adapters.services.checkpointing import Blobs

        return Blobs(self.engine)

    def recorded_trader_factory(self) -> Callable[[], Trader]:
        """New traders with the decision settings the store's first run recorded (for reproducing it);
        StrategyMismatch when the strategy given is not the one that decided the history."""
        from tradeledger.adapters.services.trading import recorded_decisions, recorded_settings
        from tradeledger.adapters.strategies import refuse_other_strategy, resolved

        strategy, settings = resolved(recorded_settings(self.feed, self.settings))
        refuse_other_strategy(recorded_decisions(self.feed), strategy, settings)
        return self.trader_factory(settings, strategy)

    # -- entrypoints ----------------------------------------------------------------

    def api_app(self) -> Litestar:
        # Imported here: only `serve` and `run` need Litestar, and it is slow to import for every command.
        from tradeledger.adapters.api.app import QUEUE_LIMIT, create_app, market_names
        from tradeledger.adapters.api.follower import LogFollower, LogReader
        from tradeledger.adapters.api.messages import Renderer
        from tradeledger.adapters.api.websocket import LiveStream
        from tradeledger.adapters.services.candles import MarketCandles
        from tradeledger.adapters.services.gateway import GatewaySessions
        from tradeledger.adapters.services.metrics_log import HistoryLog

        settings = self.settings
        renderer = Renderer(market_names(self.store))
        reader = LogReader(self.feed, renderer.encode)
        stream = LiveStream(
            follower=LogFollower(reader, self.feed, poll_interval=settings.projections.poll_interval,
                                 queue_limit=QUEUE_LIMIT),
            reader=reader, sessions=GatewaySessions(self.store, kind="api", clock=self.clock),
            heartbeat_interval=settings.agent.heartbeat_interval, send_queue=settings.api.ws_send_queue,
            send_timeout=settings.api.ws_send_timeout, clock=self.clock,
        )
        return create_app(stream=stream, renderer=renderer, read_models=self.read_models, health=self.health,
                          store=self.store, feed=self.feed, commands=self.control, settings=settings,
                          clock=self.clock, market_candles=MarketCandles(self.feed),
                          history_log=HistoryLog(self.feed, settings.trading.account))

    def telegram_bot(self, tuning: Tuning | None = None) -> TelegramBot:
        # Imported here: only `telegram` and `run` with a token need python-telegram-bot (slow to import).
        from tradeledger.adapters.services.gateway import GatewaySessions
        from tradeledger.adapters.telegram.bot import TelegramBot, Tuning
        from tradeledger.adapters.telegram.commands import KIND, Commands
        from tradeledger.projections.alert_watch import AlertWatcher
        from tradeledger.projections.outbox import Outbox

        tuning = tuning or Tuning()
        settings = self.settings
        gateway = GatewaySessions(self.store, kind=KIND, clock=self.clock)
        outbox = Outbox(self.engine, settings.telegram.allowed_chat_ids)
        return TelegramBot(
            settings=settings, store=self.store, gateway=gateway, outbox=outbox, clock=self.clock, tuning=tuning,
            commands=Commands(control=self.control, read_models=self.read_models, health=self.health,
                              gateway=gateway, settings=settings, clock=self.clock),
            watcher=AlertWatcher(self.engine, outbox.known, heartbeat_interval=settings.agent.heartbeat_interval,
                                 stuck_after=tuning.stuck_after),
        )

    def serve(self, *, stop: threading.Event, on_started: Callable[[str], None]) -> None:
        """The API and dashboard in this (main) thread until `stop` is set or a signal arrives (which sets it).

        OSError when it cannot listen.
        """
        from tradeledger.adapters.api.server import serve_foreground  # Litestar and uvicorn are slow to import

        api = self.settings.api
        serve_foreground(self.api_app(), host=api.host, port=api.port,
                         heartbeat_interval=self.settings.agent.heartbeat_interval, on_started=on_started,
                         stop=stop)

    def run(self, *, data: Given, stop: threading.Event, on_started: Callable[[str], None]) -> Failure | None:
        """Projections, the paced agent, the API (and the Telegram bot with a token) until `stop` is set.

        A component that dies sets `stop`: the others stop cleanly and its failure is returned (None after
        a normal stop). OSError when the API cannot listen.
        """
        from tradeledger.adapters.services.trading import run_live
        from tradeledger.adapters.supervisor import Supervisor

        exchange, settings = self.paced_settings(data)
        agent = self.agent(settings)
        agent.resume()  # before any thread: an agent that cannot continue the history starts nothing
        supervisor = Supervisor(stop)
        supervisor.start("projections", lambda: self.run_projector(
            stop=stop, every=RUN_HOUSEKEEPING_SECONDS, report=lambda _line: None))
        supervisor.start("agent", lambda: run_live(agent, settings, stop, data=data, exchange=exchange,
                                                   components=("agent", "projections", "api")))
        if self.settings.telegram.token is not None:
            bot = self.telegram_bot()
            supervisor.start("telegram", lambda: bot.serve(stop))
        try:
            self.serve(stop=stop, on_started=on_started)
        finally:
            stop.set()
            supervisor.join()  # the agent finishes its tick and records Stopped
            self.runner().catch_up()  # the read models include every Stopped just recorded
            self.checkpoint_on_stop()
        return supervisor.failure

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Composition:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
