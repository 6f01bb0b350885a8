"""The drawdown limit holds: checked at every close, kept across other rules' resumes, closing the positions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from tradeledger.adapters.services.trading import AgentError, decision_settings
from tradeledger.domain.broker import PaperBroker
from tradeledger.adapters.cli import main
from tradeledger.adapters.database import create_db_engine, upgrade
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.eventstore import open_store
from tradeledger.adapters.marketdata import load_candles
from tradeledger.adapters.services.ports import scan
from tradeledger.domain import errors
from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.features import FeatureEngine, Features
from tradeledger.domain.market import Market
from tradeledger.domain.risk import DAILY_LOSS, DRAWDOWN, LOSING_STREAK, RISK, RiskLimits, RiskMonitor
from tradeledger.domain.trader import MarketModel, Sizing, Trader
from tradeledger.domain.values import Candle, Decision, Prediction, Side
from tradeledger.settings import load_settings
from tests.agents import resumed, session
from tests.conftest import CANDLES

DAY = datetime(2024, 1, 1, tzinfo=timezone.utc)
LIMITS = RiskLimits(max_daily_loss_percent=Decimal(50), max_drawdown_percent=Decimal(20),
                    max_consecutive_losses=3, cooldown_candles=4)
UP, DOWN, HOLD = Prediction.UP, Prediction.DOWN, Prediction.HOLD


class Told:
    """A predictor that says whatever the test set last."""

    name = "told"
    version = "1"
    features_used = ("return_1",)

    def __init__(self) -> None:
        self.say = HOLD

    def on_candle(self, features: Features) -> Decision:
        return Decision(prediction=self.say, confidence=1.0, model_name=self.name, model_version=self.version)


class Tape:
    """A Trader on hand-made hourly candles, without fees or slippage so every figure is plain arithmetic."""

    def __init__(self, limits: RiskLimits = LIMITS, symbols: tuple[str, ...] = ("A/B",)) -> None:
        self.predictors = {symbol: Told() for symbol in symbols}
        self.building = iter(symbols)
        self.trader = Trader(model_factory=self.model, limits=limits,
                             sizing=Sizing(position_size=Decimal("0.5"), fee_rate=Decimal(0), slippage_bps=Decimal(0)),
                             broker=PaperBroker(fee_rate=Decimal(0), slippage_bps=Decimal(0)))
        self.account = Account.open("paper", "B", Decimal(100), at=DAY)
        self.markets = {symbol: Market.list(symbol, "1h", at=DAY) for symbol in symbols}
        self.hour = 0
        for _ in range(4):  # the features' warm-up: nothing is actionable before
            self.tick({symbol: ("10", "10", HOLD) for symbol in symbols})
        self.account.collect_events()

    def model(self) -> MarketModel:
        return MarketModel(FeatureEngine(fast=2, slow=3, window=3, rsi_period=2), self.predictors[next(self.building)])

    def bar(self, open_: str, close: str, say: Prediction = HOLD) -> list[object]:
        return self.tick({"A/B": (open_, close, say)})

    def tick(self, bars: dict[str, tuple[str, str, Prediction]]) -> list[object]:
        """One candle time: each symbol's candle in turn; the account events it produced."""
        for symbol, (open_, close, say) in bars.items():
            o, c = Decimal(open_), Decimal(close)
            candle = Candle(symbol=symbol, timeframe="1h", open_time=DAY + timedelta(hours=self.hour), open=o,
                            high=max(o, c), low=min(o, c), close=c, volume=Decimal(1))
            self.predictors[symbol].say = say
            self.trader.trade(candle, self.trader.observe(candle), self.markets[symbol], self.account)
            self.markets[symbol].collect_events()
        self.hour += 1
        return self.account.collect_events()

    def equity(self) -> Decimal:
        return self.account.equity(self.trader.last_prices)


def of(events: list[object], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def halts(events: list[object]) -> list[tuple[str, str]]:
    return [(e.rule, e.by) for e in of(events, Account.TradingHalted)]


def test_exactly_the_limit_halts_and_a_hair_less_does_not() -> None:
    risk = RiskMonitor(LIMITS)
    risk.observe(DAY, Decimal(100))
    risk.observe(DAY + timedelta(hours=1), Decimal("80.0001"))
    assert risk.breach(None) is None, "19.9999 % is inside the 20 % limit"
    risk.observe(DAY + timedelta(hours=2), Decimal(80))
    breach = risk.breach(None)
    assert breach is not None and breach.rule == DRAWDOWN
    assert breach.metrics == {"drawdown_percent": "20.0000", "limit": "20", "equity": "80", "peak": "100"}
    assert breach.reason == "drawdown percent 20.0000 reached the limit 20"


def test_only_the_end_of_a_drawdown_halt_restarts_the_peak() -> None:
    risk = RiskMonitor(LIMITS)
    risk.observe(DAY, Decimal(100))
    risk.observe(DAY + timedelta(hours=1), Decimal(90))
    for rule in (DAILY_LOSS, LOSING_STREAK, "manual"):
        risk.resumed(rule)
        assert risk.peak == Decimal(100), f"resuming a {rule} halt keeps the peak"
    risk.resumed(DRAWDOWN)
    assert risk.peak == Decimal(90)


def test_a_drawdown_after_a_cooldown_resume_is_measured_from_the_old_peak() -> None:
    tape = Tape()
    events: list[object] = []
    for price in ("10", "9.8", "9.6"):  # three losing round trips: buy at price, sell 0.2 lower
        events += tape.bar(price, price, UP)
        events += tape.bar(price, price, DOWN)
    events += tape.bar("9.4", "9.4")
    assert halts(events) == [(LOSING_STREAK, RISK)]
    for _ in range(4):
        events += tape.bar("9.4", "9.4")
    assert [(e.by, e.reason) for e in of(events, Account.TradingResumed)] == [(RISK, "cooldown of 4 candles is over")]
    resumed_at = tape.equity()
    tape.bar("9.4", "9.4", UP)
    tape.bar("9.4", "9.4")
    events = tape.bar("9.4", "6.0")
    assert (resumed_at - tape.equity()) / resumed_at < Decimal("0.19"), "not 20 % below the equity at the resume"
    assert halts(events) == [(DRAWDOWN, RISK)], "but 20 % below the peak before the losing streak"
    [halt] = of(events, Account.TradingHalted)
    assert Decimal(halt.metrics["peak"]) == 100 and halt.metrics["drawdown_percent"] == "20.5679"
    [exit_order] = of(events, Account.OrderPlaced)
    assert (exit_order.side, exit_order.reason) == (Side.SELL, DRAWDOWN)
    assert exit_order.quantity == tape.account.position("A/B").quantity
    fills = of(tape.bar("5.9", "5.5"), Account.OrderFilled)
    assert [(f.order_id, f.price) for f in fills] == [(exit_order.order_id, Decimal("5.9"))], "at the next open"
    assert not tape.account.positions and tape.account.halted_by_rule == DRAWDOWN


def test_a_drawdown_breach_while_halted_by_the_daily_loss_takes_over_and_exits() -> None:
    tape = Tape(msgspec.structs.replace(LIMITS, max_daily_loss_percent=Decimal(5)))
    tape.bar("10", "10", UP)
    events = tape.bar("10", "8.8")
    assert halts(events) == [(DAILY_LOSS, RISK)] and tape.account.positions, "an entry halt keeps the position"
    events = tape.bar("8.8", "6")
    assert tape.equity() == Decimal(80) and halts(events) == [(DRAWDOWN, RISK)]
    [halt] = of(events, Account.TradingHalted)
    assert halt.reason == "drawdown percent 20.0000 reached the limit 20 (takes over the max_daily_loss_percent halt)"
    assert [(o.side, o.reason) for o in of(events, Account.OrderPlaced)] == [(Side.SELL, DRAWDOWN)]
    tape.bar("6", "6")
    assert not tape.account.positions and tape.account.halted_by_rule == DRAWDOWN
    tape.hour = 24
    events = tape.bar("6", "6") + tape.bar("6", "6") + tape.bar("6", "6") + tape.bar("6", "6", UP)
    assert of(events, Account.TradingResumed) == [], "a new day does not lift a drawdown halt"
    assert [r.rule for r in of(events, Account.OrderRejected)] == [DRAWDOWN]


def test_a_persons_resume_of_a_drawdown_halt_restarts_the_peak() -> None:
    tape = Tape()
    tape.bar("10", "10", UP)
    assert halts(tape.bar("10", "5.9")) == [(DRAWDOWN, RISK)]
    tape.bar("5.9", "5.9")
    assert tape.equity() == Decimal("79.5")
    tape.account.resume_trading(by="api", reason="accepted", at=DAY + timedelta(hours=7))
    tape.account.collect_events()
    events = tape.bar("5.9", "5.9") + tape.bar("5.9", "5.9", UP) + tape.bar("5.9", "5.9")
    assert halts(events) == [], "20.5 % below the old peak, but the peak restarted at 79.5"
    assert tape.account.positions, "entries are allowed again"
    assert halts(tape.bar("5.9", "3.5")) == [(DRAWDOWN, RISK)], "20 % below the new peak"


def test_a_manual_halt_is_taken_over_too_and_the_exit_can_be_switched_off() -> None:
    tape = Tape(msgspec.structs.replace(LIMITS, exit_on_drawdown=False))
    tape.bar("10", "10", UP)
    tape.account.halt_trading(rule="manual", reason="operator", metrics={}, by="api", at=DAY + timedelta(hours=5))
    tape.account.collect_events()
    events = tape.bar("10", "5.9")
    assert halts(events) == [(DRAWDOWN, RISK)] and of(events, Account.OrderPlaced) == []
    assert tape.account.position("A/B").quantity == Decimal(5), "exit_on_drawdown = false only blocks entries"


def test_a_drawdown_exit_sells_every_position_and_drops_pending_entries() -> None:
    tape = Tape(symbols=("A/B", "C/B"))
    tape.tick({"A/B": ("10", "10", UP), "C/B": ("10", "10", HOLD)})
    # A/B crashes on its candle; C/B's entry signal came first in this candle time and waits for its next open.
    events = tape.tick({"C/B": ("10", "10", UP), "A/B": ("10", "5.9", HOLD)})
    assert halts(events) == [(DRAWDOWN, RISK)]
    assert [type(e).__name__ for e in events if not isinstance(e, Account.TradingHalted | Account.OrderFilled)] == [
        "OrderPlaced", "OrderCancelled", "OrderPlaced"]
    cancelled = of(events, Account.OrderCancelled)[0]
    assert cancelled.reason == f"{DRAWDOWN}: pending entries are dropped"
    tape.tick({"C/B": ("10", "10", HOLD), "A/B": ("5.9", "5.9", HOLD)})
    assert not tape.account.positions and not tape.account.orders


def test_the_account_lets_only_another_rule_take_over_a_halt() -> None:
    account = Account.open("paper", "B", Decimal(100), at=DAY)
    take_over = dict(rule=DRAWDOWN, reason="r", metrics={}, by=RISK, at=DAY)
    with pytest.raises(errors.NotHalted):
        account.escalate_halt(**take_over)
    account.halt_trading(rule=DAILY_LOSS, reason="r", metrics={}, by=RISK, at=DAY)
    account.escalate_halt(**take_over)
    assert account.halted_by_rule == DRAWDOWN
    with pytest.raises(errors.AlreadyHalted):
        account.escalate_halt(**take_over)
    with pytest.raises(errors.AlreadyHalted):
        account.halt_trading(rule="manual", reason="r", metrics={}, by="api", at=DAY)


def test_a_store_recorded_before_exit_on_drawdown_existed_continues_as_if_it_were_true(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    store = open_store(sqlite_url)
    settings = load_settings(environ={}, overrides={"database.url": sqlite_url, "predictor.name": "sma_cross"})
    old_config = {k: v for k, v in decision_settings(settings).recorded().items() if k != "risk.exit_on_drawdown"}
    store.save(AgentRun.start(key="before the key", version="0.0.1", host="h", pid=1, config_digest="d",
                              components=("agent",), model="sma_cross(seed=42)", decision_config=old_config, at=DAY))
    candles = load_candles(CANDLES / "ETH_BTC-5m.csv").candles[:300]
    agent = resumed(EventLog(store, create_db_engine(sqlite_url)), settings)
    agent.start(("test",))
    assert agent.run_feed(candles, batch_size=100) == 300
    agent.stop("test")
    assert main(["--database", sqlite_url, "reproduce"]) == 0
    switched_off = load_settings(environ={}, overrides={"database.url": sqlite_url, "predictor.name": "sma_cross",
                                                        "risk.exit_on_drawdown": "false"})
    with pytest.raises(AgentError, match="risk.exit_on_drawdown recorded 'True', now 'False'"):
        session(EventLog(store, create_db_engine(sqlite_url)), switched_off).resume()
    store.close()


def test_reproduce_uses_the_recorded_exit_on_drawdown(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADELEDGER_RISK__EXIT_ON_DRAWDOWN", "false")
    data = str(CANDLES / "ETH_BTC-5m.csv")  # sma_cross hits the drawdown limit about 80 % into it
    assert main(["--database", sqlite_url, "backtest", "--data", data, "--predictor", "sma_cross"]) == 0
    monkeypatch.delenv("TRADELEDGER_RISK__EXIT_ON_DRAWDOWN")
    store, engine = open_store(sqlite_url), create_db_engine(sqlite_url)
    events = [r.event for r in scan(EventLog(store, engine))]
    engine.dispose()
    store.close()
    assert [e.rule for e in events if isinstance(e, Account.TradingHalted)][-1] == DRAWDOWN
    assert not [e for e in events if isinstance(e, Account.OrderPlaced) and e.reason == DRAWDOWN]
    capsys.readouterr()
    assert main(["--database", sqlite_url, "reproduce"]) == 0, capsys.readouterr().out
