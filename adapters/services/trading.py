"""The trading session: candles in, one atomic append per tick (or per batch of ticks) out.

Backtest and live differ only in the feed, the pacing and the batch size; the
decisions come from the same `Trader`. `resume()` takes the store's agent
lease (one agent per store: the single writer of the Account and Market
streams, docs/agent.md), loads the latest checkpoint (`services.checkpointing`) and replays
the log after it (`services.reproduce`) to rebuild the models, risk state and aggregates;
the session then skips every candle already recorded, so a killed agent resumes where it
stopped without recording anything twice. Operator commands reach the account only
through the session, which applies them at its next tick.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal

import msgspec
from eventsourcing.persistence import IntegrityError

from tradeledger.adapters.candlefiles import Given, candle_paths
from tradeledger.adapters.errors import Refused
from tradeledger.adapters.exchange import Exchange
from tradeledger.adapters.feeds import WARMUP_CANDLES, demo_clock, live_feed, synthetic_start
from tradeledger.adapters.inputfile import InputFile, input_file
from tradeledger.adapters.livefeed import ExchangeFeed, FeedStatus, feed_state
from tradeledger.adapters.lease import Lease
from tradeledger.adapters.markets import quote_currency, quote_of
from tradeledger.adapters.release import VERSION
from tradeledger.adapters.services.control import Inbox
from tradeledger.adapters.services.ports import Clock, EventLogPort, utcnow
from tradeledger.adapters.services.checkpointing import Checkpoints
from tradeledger.adapters.services.reproduce import replay_log
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.control import apply_command
from tradeledger.domain.decisions import DecisionSettings
from tradeledger.domain.market import Market
from tradeledger.domain.trader import Trader
from tradeledger.domain.values import Candle, timeframe_delta, timeframe_seconds
from tradeledger.settings import Settings

LEASE_WAIT_SECONDS = 2.0  # how long a starting agent waits for the lease before refusing to start
LEASE_RETRY_SECONDS = 0.05
SYNTHETIC = "SYNTHETIC"  # the demo market's feed source, as the dashboard labels it
COMMAND_POLL_SECONDS = 0.1  # a paced agent between candles applies operator commands this often


class AgentError(Refused, RuntimeError):
    pass


def decision_settings(settings: Settings) -> DecisionSettings:
    """Every setting a decision depends on, as AgentRun.Started records them."""
    return DecisionSettings.of(msgspec.to_builtins(settings))


def recorded_decisions(log: EventLogPort) -> DecisionSettings | None:
    """The decision settings of the first agent run in this store, if any ran."""
    first = log.first(AgentRun.Started)
    return None if first is None else DecisionSettings.from_recorded(first.event.decision_config)


def recorded_settings(log: EventLogPort, settings: Settings) -> Settings:
    """The settings to replay this store with: its recorded decision settings win."""
    recorded = recorded_decisions(log)
    if recorded is None:
        return settings
    return msgspec.convert(recorded.applied_to(msgspec.to_builtins(settings)), Settings, strict=False)


def model_description(settings: Settings) -> str:
    """What decides, as AgentRun.Started records it: a user strategy's name and version, or the predictor."""
    s, p = settings.strategy, settings.predictor
    return f"{s.name} {s.version} (strategy)" if s.name is not None else f"{p.name}(seed={p.seed})"


def refuse_other_quote(symbol: str, account: Account) -> None:
    """One account holds one cash currency: a market quoted in another cannot be booked in it."""
    quote = quote_of(symbol)
    if quote not in (None, account.quote_currency):
        raise AgentError(f"{symbol} is quoted in {quote}, but this store's account {account.name!r} "
                         f"holds {account.quote_currency}: use a new database")


class TradingSession:
    """One agent's trading, step by step: `resume()`, `start()`, `tick()` per candle, `flush()`, `stop()`.

    Constructing one does nothing. `resume()` takes the store's agent lease (so this session is the only
    writer of the Account and Market streams), refuses settings that would decide differently from the
    recorded history, and replays the log to warm up the trader and the aggregates.
    """

    def __init__(self, log: EventLogPort, settings: Settings, trader_factory: Callable[[], Trader], lease: Lease,
                 *, clock: Clock = utcnow, checkpoints: Checkpoints | None = None) -> None:
        self.log = log
        self.checkpoints = checkpoints
        self.covered = 0  # the log position of the last account or market event recorded
        self.settings = settings
        self.trader_factory = trader_factory
        self.lease = lease
        self.clock = clock
        self.trader: Trader = trader_factory()
        self.markets: dict[tuple[str, str], Market] = {}
        # Opened by the first candle (`tick`), at its business time: the ledger's timeline starts there.
        self.account: Account | None = None
        self.inbox = Inbox(log, settings.trading.account, after=0)
        self.resumed = False
        self.run: AgentRun | None = None
        self.candles_processed = 0
        self.last_beat = 0.0
        self.last_poll = 0.0
        self.unsaved = 0  # ticks collected in `batch`, not yet appended
        self.batch: list[object] = []
        self.feed_status: FeedStatus | None = None  # a live exchange feed's: its lag is what heartbeats report

    # -- warm-up ----------------------------------------------------------------

    def resume(self) -> None:
        """Take the lease and continue the recorded history; AgentError when this agent cannot."""
        self.take_lease()
        try:
            self.refuse_changed_decisions()
            start = self.checkpoints and self.checkpoints.restore(self.trader_factory)  # None: the whole log
            replay = replay_log(self.log, self.trader_factory, start=start)
            if replay.divergence is not None:
                raise AgentError("the recorded history is not what this agent would have done, so it cannot "
                                 f"continue it (run `tradeledger reproduce`): {replay.divergence}")
            if replay.account is not None:
                for symbol in self.settings.trading.symbols:  # refused before anything is recorded
                    refuse_other_quote(symbol, replay.account)
        except BaseException:
            self.lease.release()
            raise
        self.trader = replay.trader
        self.markets = {(m.symbol, m.timeframe): m for m in replay.markets.values()}
        self.account, self.covered = replay.account, replay.position
        # Commands are applied in log order, so every one up to the last applied (or read) is handled.
        self.inbox.after = max(replay.account.last_command_position if replay.account else 0, replay.commands_read)
        self.resumed = True

    def take_lease(self) -> None:
        # A control call without an agent holds the lease for the milliseconds it applies a command: wait that out.
        deadline = time.monotonic() + LEASE_WAIT_SECONDS
        while not self.lease.acquire():
            if time.monotonic() >= deadline:
                raise AgentError("another agent is running on this store (it holds the agent lease); "
                                 "a second one would write the same streams: stop that one first")
            time.sleep(LEASE_RETRY_SECONDS)

    def refuse_changed_decisions(self) -> None:
        recorded = recorded_decisions(self.log)
        changed = {} if recorded is None else decision_settings(self.settings).changes_from(recorded)
        if changed:
            listing = ", ".join(f"{k} recorded {old!r}, now {new!r}" for k, (old, new) in changed.items())
            raise AgentError("this store's history was decided with other settings or code, so it cannot be "
                             f"continued with these ({listing}); use a new database or the recorded settings")

    def open_account(self, at: datetime) -> Account:
        """The account, opened at `at` (its first candle's open time) in the append of that candle's tick."""
        t = self.settings.trading
        currency = quote_currency(t.quote_currency, t.symbols)
        account = Account.open(t.account, currency, t.initial_balance, at=at)
        self.batch.extend(account.collect_events())
        return account

    # -- run lifecycle --------------------------------------------------------

    def start(self, components: tuple[str, ...], data: Sequence[InputFile] = ()) -> AgentRun:
        """Record the run's start; `data`: the candle files a backtest or file replay reads."""
        if not self.resumed:
            raise AgentError("resume() the session first: it takes the lease and replays the recorded history")
        at = self.clock()
        self.run = AgentRun.start(
            key=f"{socket.gethostname()}:{os.getpid()}:{at.isoformat()}:{uuid.uuid4()}",
            version=VERSION, host=socket.gethostname(), pid=os.getpid(),
            config_digest=self.settings.digest(), components=components,
            model=model_description(self.settings),
            decision_config=decision_settings(self.settings).recorded(), at=at, data=tuple(data),
        )
        self.log.append(self.run.collect_events())
        self.last_beat = time.monotonic()
        return self.run

    def heartbeat(self, feed_lag: float = 0.0, *, force: bool = False) -> None:
        due = time.monotonic() - self.last_beat >= self.settings.agent.heartbeat_interval
        if self.run is None or not (due or force):
            return
        status = self.feed_status
        if status is None:
            self.run.beat(at=self.clock(), candles_processed=self.candles_processed, feed_lag=feed_lag)
        else:
            e = self.settings.exchange
            state = feed_state(status, candle_seconds=timeframe_seconds(self.settings.trading.timeframe),
                               outage_after=e.outage_alert_after)
            self.run.beat(at=self.clock(), candles_processed=self.candles_processed, feed_lag=status.lag,
                          feed_source=status.source, feed_state=state, last_candle_at=status.last_close,
                          reconnects=status.reconnects)
        self.log.append(self.run.collect_events())
        self.last_beat = time.monotonic()

    def stop(self, reason: str, *, clean: bool = True) -> None:
        """Append what is collected, record Stopped, and give up the lease."""
        try:
            self.flush()
            if clean:
                self.checkpoint()
            if self.run is not None and not self.run.stopped:
                self.run.stop(reason=reason, clean=clean, at=self.clock())
                self.log.append(self.run.collect_events())
        finally:
            self.lease.release()

    # -- ticks ----------------------------------------------------------------

    def is_recorded(self, candle: Candle) -> bool:
        market = self.markets.get((candle.symbol, candle.timeframe))
        return market is not None and market.last_open_time is not None and candle.open_time <= market.last_open_time

    def tick(self, candle: Candle) -> bool:
        """Decide on one candle; False when it was already recorded (a resumed feed).

        The first tick of each append first applies the operator commands issued since the last one read,
        so they take effect before this candle's decisions and are appended with them.
        """
        if self.run is None:
            raise AgentError("start() the agent run first: it records the settings these decisions depend on")
        if self.is_recorded(candle):
            return False
        if self.account is None:
            self.account = self.open_account(candle.open_time)
        if (candle.symbol, candle.timeframe) not in self.markets:
            refuse_other_quote(candle.symbol, self.account)
        if not self.unsaved:
            self.apply_commands()
        market = self.market(candle)
        self.trader.trade(candle, self.trader.observe(candle), market, self.account)
        # Collected tick by tick so the log holds each tick's events together, in the
        # order a replay produces them, however many ticks one append carries.
        self.batch.extend(market.collect_events())
        self.batch.extend(self.account.collect_events())
        self.unsaved += 1
        self.candles_processed += 1
        return True

    def apply_commands(self) -> None:
        if self.account is None:
            return  # nothing can be commanded before the account is opened (control refuses it)
        for issued, position in self.inbox.take():
            apply_command(self.account, issued, position, self.trader)
        self.batch.extend(self.account.collect_events())
        self.last_poll = time.monotonic()

    def market(self, candle: Candle) -> Market:
        key = (candle.symbol, candle.timeframe)
        if key not in self.markets:
            self.markets[key] = Market.list(candle.symbol, candle.timeframe, at=candle.open_time)
        return self.markets[key]

    def flush(self) -> None:
        """Append what the ticks collected in one transaction. The lease makes this the only writer of its
        streams, so the append cannot conflict; if it does, someone wrote around the lease, and the agent stops."""
        if self.batch:
            try:
                self.covered = self.log.append(self.batch)
            except IntegrityError as error:
                self.batch.clear()  # it can never be appended: stop() records Stopped without it
                raise AgentError(f"another writer appended to the agent's streams (around its lease): {error}"
                                 ) from error
            self.batch.clear()
        self.unsaved = 0
        self.checkpoint(when_due=True)

    def checkpoint(self, *, when_due: bool = False) -> None:
        """A checkpoint of the state after the last append (services.checkpointing), unless one covers it;
        `when_due`: only once `agent.checkpoint_every` candles were recorded since the last one."""
        c, markets = self.checkpoints, list(self.markets.values())
        if c is not None and self.run is not None and self.account is not None and self.covered > c.covered \
                and not (when_due and not c.due(markets)):
            c.save(self.run, self.covered, self.inbox.after, self.trader, self.account, markets, at=self.clock())

    def run_feed(
        self,
        candles: Iterable[Candle],
        *,
        batch_size: int = 1,
        pace: float | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Process a feed; returns the number of new candles.

        With `pace`, each candle time that has not closed yet by the wall clock waits `pace`
        seconds first: a feed starting in the past catches up at once, then runs one candle
        time per `pace` seconds (the demo market's clock runs faster than real time).
        """
        stop = stop or threading.Event()
        paced_time: datetime | None = None
        for candle in candles:
            if pace and candle.open_time != paced_time and candle.close_time > self.clock() and paced_time:
                self.wait(pace, stop)
            paced_time = candle.open_time
            if stop.is_set():
                break
            if not self.tick(candle):
                continue
            if pace is not None and self.feed_status is not None:
                self.feed_status.last_close = candle.close_time
                self.feed_status.lag = self.feed_lag(candle)
            if self.unsaved >= batch_size:
                self.flush()
                if progress is not None:
                    progress(self.candles_processed)
            self.heartbeat(self.feed_lag(candle) if pace else 0.0)
        self.flush()
        return self.candles_processed

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Between paced candles: heartbeats, and operator commands applied within COMMAND_POLL_SECONDS."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            stop.wait(min(left, self.settings.agent.heartbeat_interval, COMMAND_POLL_SECONDS))
            if time.monotonic() - self.last_poll >= COMMAND_POLL_SECONDS:
                self.apply_commands()
                self.flush()
            self.heartbeat()

    def feed_lag(self, candle: Candle) -> float:
        return max(0.0, (self.clock() - candle.close_time).total_seconds())

    def equity(self) -> Decimal:
        return self.account.equity(self.trader.last_prices)


def exchange_candles(agent: TradingSession, settings: Settings, exchange: Exchange,
                     stop: threading.Event) -> Iterator[Candle]:
    """The live exchange feed (adapters.livefeed), sleeping in the session's `wait` (heartbeats, commands)."""
    timeframe = settings.trading.timeframe

    def last_recorded(symbol: str) -> datetime | None:
        market = agent.markets.get((symbol, timeframe))
        return None if market is None else market.last_open_time

    def wait(seconds: float) -> bool:
        agent.wait(seconds, stop)
        return not stop.is_set()

    feed = ExchangeFeed(exchange, settings.trading.symbols, timeframe, poll_interval=settings.exchange.poll_interval,
                        last_recorded=last_recorded)
    agent.feed_status = feed.status
    return feed.candles(wait)


def demo_candles(agent: TradingSession, feed: Iterator[Candle], settings: Settings,
                 stop: threading.Event) -> Iterator[Candle]:
    """The synthetic market on its clock (`adapters.feeds.demo_clock`), resuming at the last recorded close,
    or at the warm-up's end on a fresh store (the warm-up itself is recorded at once)."""
    step = timeframe_delta(settings.trading.timeframe)
    closes = [m.last_open_time + step for m in agent.markets.values() if m.last_open_time is not None]
    start = synthetic_start(agent.log, settings.trading.timeframe, agent.clock(), settings.trading.speed)
    anchor = max(closes) if closes else start + WARMUP_CANDLES * step

    def wait(seconds: float) -> bool:
        agent.wait(seconds, stop)
        return not stop.is_set()

    return demo_clock(feed, anchor=anchor, speed=settings.trading.speed, clock=agent.clock, wait=wait)


def run_live(agent: TradingSession, settings: Settings, stop: threading.Event, *, data: Given,
             components: tuple[str, ...], exchange: Exchange | None = None) -> None:
    """The paced agent until `stop` is set; records Started, heartbeats and a clean or unclean Stopped.

    With `exchange`, it trades that exchange's closed candles as they close (no pacing of its own: the
    feed waits for the exchange); otherwise a file replayed as if live, or the synthetic demo market."""
    files = candle_paths(data)
    agent.start(components, [input_file(path) for path in files])
    try:
        if exchange is not None:
            agent.run_feed(exchange_candles(agent, settings, exchange, stop), stop=stop)
        else:
            t = settings.trading
            demo = SYNTHETIC if t.speed == 1 else f"{SYNTHETIC} {t.speed:g}x"
            source = demo if not files else f"file:{','.join(path.name for path in files)}"
            agent.feed_status = FeedStatus(source=source)
            feed = live_feed(agent.log, symbols=t.symbols, timeframe=t.timeframe, seed=settings.predictor.seed,
                             now=agent.clock(), data=files, speed=t.speed)
            if not files:
                agent.run_feed(demo_candles(agent, feed, settings, stop), stop=stop, pace=0.0)
            else:
                agent.run_feed(feed, pace=t.update_interval, stop=stop)
    except BaseException as error:
        agent.stop(f"failed: {error!r}", clean=False)
        raise
    agent.stop("stopped on request" if stop.is_set() else "feed ended")
