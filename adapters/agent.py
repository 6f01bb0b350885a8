"""The agent loop: candles in, one atomic append per tick (or per batch of ticks) out.

Backtest and live differ only in the feed, the pacing and the batch size; the
decisions come from the same `Trader`. On start the agent replays the log
(`adapters.reproduce`) to rebuild its models, risk state and aggregates, then
skips every candle already recorded, so a killed agent resumes where it
stopped without recording anything twice.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal

import msgspec
from eventsourcing.persistence import IntegrityError

from tradeledger.adapters.broker import PaperBroker
from tradeledger.adapters.calendars import sessions_for
from tradeledger.adapters.eventlog import to_record
from tradeledger.adapters.eventstore import LedgerStore
from tradeledger.adapters.feeds import live_feed
from tradeledger.adapters.markets import quote_currency, quote_of
from tradeledger.adapters.models import build_predictor
from tradeledger.adapters.reproduce import replay_log
from tradeledger.adapters.topics import stored_topics
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.features import FeatureEngine
from tradeledger.domain.ids import market_id
from tradeledger.domain.market import Market
from tradeledger.domain.risk import RiskLimits
from tradeledger.domain.trader import MarketModel, Signal, Sizing, Trader
from tradeledger.domain.values import Candle
from tradeledger.settings import Settings

VERSION = "0.1.0"
MAX_CONFLICT_RETRIES = 20


DECISION_KEYS = (
    "predictor.name", "predictor.seed", "predictor.fast", "predictor.slow",
    "trading.fee_rate", "trading.slippage_bps", "trading.position_size",
    "risk.max_daily_loss_percent", "risk.max_drawdown_percent", "risk.max_consecutive_losses",
    "risk.cooldown_candles", "risk.exit_on_drawdown", "market.calendar",
)
# Decision settings added after stores were recorded: a recorded config without one was decided with this value.
ADDED_DECISION_DEFAULTS = {"risk.exit_on_drawdown": "True", "market.calendar": "24/7"}


class AgentError(RuntimeError):
    pass


def decision_config(settings: Settings) -> dict[str, str]:
    """Every setting a decision depends on, as recorded in AgentRun.Started."""
    plain = msgspec.to_builtins(settings)
    return {key: str(plain[key.split(".")[0]][key.split(".")[1]]) for key in DECISION_KEYS}


def recorded_decision_config(store: LedgerStore) -> dict[str, str] | None:
    """The decision settings of the first agent run in this store, if any ran."""
    first = store.recorder.select_notifications(start=0, limit=1, topics=stored_topics(AgentRun.Started), inclusive_of_start=False)
    return {**ADDED_DECISION_DEFAULTS, **to_record(first[0]).data["decision_config"]} if first else None


def with_decision_config(settings: Settings, config: dict[str, str]) -> Settings:
    plain = msgspec.to_builtins(settings)
    for key, value in config.items():
        section, name = key.split(".")
        plain[section][name] = value
    return msgspec.convert(plain, Settings, strict=False)


def recorded_settings(store: LedgerStore, settings: Settings) -> Settings:
    """The settings to replay this store with: its recorded decision settings win."""
    recorded = recorded_decision_config(store)
    return settings if recorded is None else with_decision_config(settings, recorded)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def refuse_other_quote(symbol: str, account: Account) -> None:
    """One account holds one cash currency: a market quoted in another cannot be booked in it."""
    quote = quote_of(symbol)
    if quote not in (None, account.quote_currency):
        raise AgentError(f"{symbol} is quoted in {quote}, but this store's account {account.name!r} "
                         f"holds {account.quote_currency}: use a new database")


def build_trader(settings: Settings) -> Trader:
    p, t, r = settings.predictor, settings.trading, settings.risk
    sessions = sessions_for(settings.market.calendar)

    def market_model() -> MarketModel:
        predictor = build_predictor(p.name, seed=p.seed, fast=p.fast, slow=p.slow)
        return MarketModel(FeatureEngine(fast=p.fast, slow=p.slow, sessions=sessions), predictor)

    return Trader(
        model_factory=market_model,
        limits=RiskLimits(max_daily_loss_percent=r.max_daily_loss_percent,
                          max_drawdown_percent=r.max_drawdown_percent,
                          max_consecutive_losses=r.max_consecutive_losses, cooldown_candles=r.cooldown_candles,
                          exit_on_drawdown=r.exit_on_drawdown),
        sizing=Sizing(position_size=t.position_size, fee_rate=t.fee_rate, slippage_bps=t.slippage_bps),
        broker=PaperBroker(fee_rate=t.fee_rate, slippage_bps=t.slippage_bps),
    )


class Agent:
    def __init__(self, store: LedgerStore, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.refuse_changed_decisions()
        replay = replay_log(store, lambda: build_trader(settings))
        if replay.divergence is not None:
            raise AgentError("the recorded history is not what this agent would have done, so it cannot "
                             f"continue it (run `tradeledger reproduce`): {replay.divergence}")
        self.trader = replay.trader
        self.markets = {(m.symbol, m.timeframe): m for m in replay.markets.values()}
        # Opened by the first candle (`process`), at its business time: the ledger's timeline starts there.
        self.account: Account | None = replay.account
        if replay.account is not None:
            for symbol in settings.trading.symbols:  # refused before anything is recorded
                refuse_other_quote(symbol, replay.account)
        self.run: AgentRun | None = None
        self.candles_processed = 0
        self.last_beat = 0.0
        self.unsaved: list[tuple[Candle, Signal]] = []
        self.batch: list[object] = []
        self.checkpoint = self.trader.checkpoint()

    def refuse_changed_decisions(self) -> None:
        recorded = recorded_decision_config(self.store) or {}
        changed = {k: (v, current) for k, v in recorded.items()
                   if (current := decision_config(self.settings)[k]) != v}
        if changed:
            listing = ", ".join(f"{k} recorded {old!r}, now {new!r}" for k, (old, new) in changed.items())
            raise AgentError("this store's history was decided with other settings, so it cannot be continued "
                             f"with these ({listing}); use a new database or the recorded settings")

    def open_account(self, at: datetime) -> Account:
        """The account, opened at `at` (its first candle's open time) in the append of that candle's tick."""
        t = self.settings.trading
        currency = quote_currency(t.quote_currency, t.symbols)
        account = Account.open(t.account, currency, t.initial_balance, at=at)
        self.batch.extend(account.collect_events())
        return account

    # -- run lifecycle --------------------------------------------------------

    def start(self, components: tuple[str, ...]) -> AgentRun:
        at = self.clock()
        self.run = AgentRun.start(
            key=f"{socket.gethostname()}:{os.getpid()}:{at.isoformat()}:{uuid.uuid4()}",
            version=VERSION, host=socket.gethostname(), pid=os.getpid(),
            config_digest=self.settings.digest(), components=components,
            model=f"{self.settings.predictor.name}(seed={self.settings.predictor.seed})",
            decision_config=decision_config(self.settings), at=at,
        )
        self.store.save(self.run)
        self.last_beat = time.monotonic()
        return self.run

    def heartbeat(self, feed_lag: float = 0.0, *, force: bool = False) -> None:
        due = time.monotonic() - self.last_beat >= self.settings.agent.heartbeat_interval
        if self.run is None or not (due or force):
            return
        self.run.beat(at=self.clock(), candles_processed=self.candles_processed, feed_lag=feed_lag)
        self.store.save(self.run)
        self.last_beat = time.monotonic()

    def stop(self, reason: str, *, clean: bool = True) -> None:
        self.flush()
        if self.run is not None and not self.run.stopped:
            self.run.stop(reason=reason, clean=clean, at=self.clock())
            self.store.save(self.run)

    # -- ticks ----------------------------------------------------------------

    def is_recorded(self, candle: Candle) -> bool:
        market = self.markets.get((candle.symbol, candle.timeframe))
        return market is not None and market.last_open_time is not None and candle.open_time <= market.last_open_time

    def process(self, candle: Candle) -> bool:
        """Decide on one candle; False when it was already recorded (a resumed feed)."""
        if self.run is None:
            raise AgentError("start() the agent run first: it records the settings these decisions depend on")
        if self.is_recorded(candle):
            return False
        if self.account is None:
            self.account = self.open_account(candle.open_time)
        if (candle.symbol, candle.timeframe) not in self.markets:
            refuse_other_quote(candle.symbol, self.account)
        signal = self.trader.observe(candle)
        self.unsaved.append((candle, signal))
        self.trade(candle, signal)
        self.candles_processed += 1
        return True

    def trade(self, candle: Candle, signal: Signal) -> None:
        # Collected tick by tick so the log holds each tick's events together, in the
        # order a replay produces them, however many ticks one append carries.
        market = self.market(candle)
        assert self.account is not None, "process() opens the account at the first candle"
        self.trader.trade(candle, signal, market, self.account)
        self.batch.extend(market.collect_events())
        self.batch.extend(self.account.collect_events())

    def market(self, candle: Candle) -> Market:
        key = (candle.symbol, candle.timeframe)
        if key not in self.markets:
            self.markets[key] = Market.list(candle.symbol, candle.timeframe, at=candle.open_time)
        return self.markets[key]

    def flush(self) -> None:
        """Append the unsaved ticks in one transaction, redoing them on reloaded aggregates after a conflict."""
        for _attempt in range(MAX_CONFLICT_RETRIES):
            if not self.unsaved:
                return
            try:
                self.store.append(self.batch)
            except IntegrityError:
                self.redo_on_reloaded_aggregates()
                continue
            self.unsaved.clear()
            self.batch.clear()
            self.checkpoint = self.trader.checkpoint()
            return
        raise AgentError(f"could not append after {MAX_CONFLICT_RETRIES} write conflicts")

    def redo_on_reloaded_aggregates(self) -> None:
        """Someone else appended to our streams (a person halted trading): decide those ticks again."""
        self.trader.restore(self.checkpoint)
        self.batch.clear()
        assert self.account is not None and self.unsaved, "only a tick's append can conflict"
        if self.account.id in self.store.repository:
            self.account = self.store.repository.get(self.account.id)
        else:  # opened in the lost batch: opened again at its first candle
            self.account = self.open_account(self.unsaved[0][0].open_time)
        for key in list(self.markets):
            if market_id(*key) in self.store.repository:
                self.markets[key] = self.store.repository.get(market_id(*key))
            else:
                del self.markets[key]  # listed in the lost batch: listed again by its first candle
        for candle, signal in self.unsaved:
            self.trade(candle, signal)

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
            if not self.process(candle):
                continue
            if len(self.unsaved) >= batch_size:
                self.flush()
                if progress is not None:
                    progress(self.candles_processed)
            self.heartbeat(self.feed_lag(candle) if pace else 0.0)
        self.flush()
        return self.candles_processed

    def wait(self, seconds: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            stop.wait(min(left, self.settings.agent.heartbeat_interval))
            self.heartbeat()

    def feed_lag(self, candle: Candle) -> float:
        return max(0.0, (self.clock() - candle.close_time).total_seconds())

    def equity(self) -> Decimal:
        return self.account.equity(self.trader.last_prices)


def run_live(agent: Agent, settings: Settings, stop: threading.Event, *, data: str | None,
             components: tuple[str, ...]) -> None:
    """The paced agent until `stop` is set; records Started, heartbeats and a clean or unclean Stopped."""
    agent.start(components)
    feed = live_feed(agent.store, symbols=settings.trading.symbols, timeframe=settings.trading.timeframe,
                     seed=settings.predictor.seed, now=agent.clock(), data=data)
    try:
        agent.run_feed(feed, pace=settings.trading.update_interval, stop=stop)
    except BaseException as error:
        agent.stop(f"failed: {error!r}", clean=False)
        raise
    agent.stop("stopped on request" if stop.is_set() else "feed ended")
