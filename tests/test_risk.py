"""Risk rules halt entries with the rule and its measured values, and lift as documented."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
from hypothesis import given, strategies as st

from tradeledger.domain.broker import PaperBroker
from tradeledger.domain.account import Account
from tradeledger.domain.features import FeatureEngine
from tradeledger.domain.market import Market
from tradeledger.domain.risk import DAILY_LOSS, DRAWDOWN, LOSING_STREAK, RiskLimits, RiskMonitor
from tradeledger.domain.trader import MarketModel, Sizing, Trader
from tradeledger.domain.values import Candle, Decision, Prediction, Side

LIMITS = RiskLimits(max_daily_loss_percent=Decimal(5), max_drawdown_percent=Decimal(20),
                    max_consecutive_losses=3, cooldown_candles=4)
DAY = datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_drawdown_halts_with_the_measured_values() -> None:
    risk = RiskMonitor(msgspec.structs.replace(LIMITS, max_daily_loss_percent=Decimal(50)))
    for hour, equity in enumerate(["100", "110", "95", "89"]):
        risk.observe(DAY + timedelta(hours=hour), Decimal(equity))
    assert risk.breach(None) is None, "19.09% below the peak is inside the 20% limit"
    risk.observe(DAY + timedelta(hours=5), Decimal("87"))
    breach = risk.breach(None)
    assert breach is not None and breach.metrics["drawdown_percent"] == "20.9091"
    assert breach.metrics["peak"] == "110" and breach.metrics["limit"] == "20"
    risk.halted()
    assert risk.may_resume(DRAWDOWN) is None, "a drawdown halt waits for a person"
    risk.resumed(DRAWDOWN)
    assert risk.breach(None) is None, "a person's resume restarts the peak at the current equity"


def test_daily_loss_lifts_when_the_next_utc_day_starts() -> None:
    risk = RiskMonitor(LIMITS)
    risk.observe(DAY, Decimal(100))
    risk.observe(DAY + timedelta(hours=10), Decimal(94))
    breach = risk.breach(None)
    assert breach is not None and breach.rule == DAILY_LOSS and breach.metrics["day_open"] == "100"
    risk.halted()
    risk.observe(DAY + timedelta(hours=23), Decimal(99))
    assert risk.may_resume(DAILY_LOSS) is None, "same day: stays halted even after recovering"
    risk.observe(DAY + timedelta(days=1), Decimal(99))
    assert risk.may_resume(DAILY_LOSS) == "a new trading day started"


def test_a_losing_streak_halts_and_a_cooldown_lifts_it() -> None:
    risk = RiskMonitor(LIMITS)
    risk.observe(DAY, Decimal(100))
    for pnl in ("-1", "-1", "2", "-1", "-1"):
        risk.record_round_trip(Decimal(pnl))
    assert risk.breach(None) is None, "a win resets the streak"
    risk.record_round_trip(Decimal("-0.5"))
    breach = risk.breach(None)
    assert breach is not None and breach.rule == LOSING_STREAK and breach.metrics["losing_streak"] == "3"
    risk.halted()
    for minute in range(1, 4):
        risk.observe(DAY + timedelta(minutes=minute), Decimal(100))
        assert risk.may_resume(LOSING_STREAK) is None
    risk.observe(DAY + timedelta(minutes=4), Decimal(100))
    assert risk.may_resume(LOSING_STREAK) == "cooldown of 4 candles is over"


@given(st.lists(st.decimals(min_value=1, max_value=1000, places=2), min_size=1, max_size=60))
def test_drawdown_is_never_negative_and_matches_the_running_peak(curve: list[Decimal]) -> None:
    risk = RiskMonitor(LIMITS)
    for minute, equity in enumerate(curve):
        risk.observe(DAY + timedelta(minutes=minute), equity)
        drawdown = risk.percent_below(risk.peak)
        assert drawdown >= 0
        assert risk.peak == max(curve[: minute + 1])


class Scripted:
    """A predictor that says what the test needs, one decision per candle."""

    name = "scripted"
    version = "1"
    features_used = ("return_1",)

    def __init__(self, predictions: list[Prediction]) -> None:
        self.predictions = iter(predictions)

    def on_candle(self, features) -> Decision:  # type: ignore[no-untyped-def]
        return Decision(prediction=next(self.predictions), confidence=1.0, model_name=self.name,
                        model_version=self.version)


def candles(closes: list[str]) -> list[Candle]:
    return [Candle(symbol="A/B", timeframe="1h", open_time=DAY + timedelta(hours=i), open=Decimal(c),
                   high=Decimal(c), low=Decimal(c), close=Decimal(c), volume=Decimal(1)) for i, c in enumerate(closes)]


def test_a_halted_trader_rejects_entries_naming_the_rule_but_still_exits() -> None:
    predictions = [Prediction.HOLD] * 25 + [Prediction.UP, Prediction.HOLD, Prediction.DOWN, Prediction.HOLD,
                                            Prediction.UP]
    trader = Trader(model_factory=lambda: MarketModel(FeatureEngine(fast=2, slow=3, window=3, rsi_period=2),
                                                      Scripted(predictions)),
                    limits=LIMITS, sizing=Sizing(position_size=Decimal("0.5"), fee_rate=Decimal(0),
                                                 slippage_bps=Decimal(0)),
                    broker=PaperBroker(fee_rate=Decimal(0), slippage_bps=Decimal(0)))
    account = Account.open("paper", "B", Decimal(100), at=DAY)
    market = Market.list("A/B", "1h", at=DAY)
    feed = candles(["10"] * 26 + ["10", "10", "10", "10"])
    for candle in feed[:27]:
        trader.trade(candle, trader.observe(candle), market, account)
    assert account.position("A/B").quantity == Decimal(5), "entered with half the equity at the next open"
    account.halt_trading(rule="manual", reason="operator", metrics={}, by="api", at=feed[26].close_time)
    for candle in feed[27:]:
        trader.trade(candle, trader.observe(candle), market, account)
    events = account.collect_events()
    sells = [e for e in events if isinstance(e, Account.OrderFilled) and e.side is Side.SELL]
    rejected = [e for e in events if isinstance(e, Account.OrderRejected)]
    assert len(sells) == 1, "the exit still happened while halted"
    assert [(r.rule, r.side) for r in rejected] == [("manual", Side.BUY)]
    assert "halted by manual" in rejected[0].reason
