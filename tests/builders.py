"""Builders for test histories made with the real aggregates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

from tradeledger.domain.account import Account
from tradeledger.domain.agent_run import AgentRun
from tradeledger.domain.checkpoint import Checkpoint
from tradeledger.domain.control import ControlCommand, apply_command
from tradeledger.domain.gateway import Gateway
from tradeledger.domain.market import Market
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction, Side

START = datetime(2024, 3, 1, 12, tzinfo=timezone.utc)


def one_of_each(start: datetime = START) -> list[object]:
    """Aggregates that between them have triggered every event type there is."""
    account = Account.open("paper", "BTC", Decimal("1.5"), at=start)
    buy = account.place_order("ETH/BTC", Side.BUY, Decimal("2"), at=start, signal_ref="s", reason="r")
    account.fill_order(buy, price=Decimal("0.05"), quantity=Decimal("2"), fee=Decimal("0.0001"), at=start)
    cancelled = account.place_order("ETH/BTC", Side.SELL, Decimal("1"), at=start)
    account.cancel_order(cancelled, reason="test", at=start)
    account.reject_order("ETH/BTC", Side.BUY, rule="max_drawdown_percent", reason="halted", at=start)
    account.halt_trading(rule="manual", reason="r", metrics={"equity": "1.4"}, by="api", at=start)
    account.resume_trading(by="telegram:1", reason="r", at=start)
    account.switch_entries(stopped=True, by="api", reason="maintenance", at=start)
    market = Market.list("ETH/BTC", "5m", at=start)
    market.close_candle(Candle(symbol="ETH/BTC", timeframe="5m", open_time=start, open=Decimal("0.05"),
                               high=Decimal("0.06"), low=Decimal("0.04"), close=Decimal("0.055"),
                               volume=Decimal("10.00000001")), quality_flags=("gap_before:2",))
    market.generate_signal(
        Decision(prediction=Prediction.UP, confidence=0.75, model_name="ensemble", model_version="v1",
                 members=(MemberPrediction(name="sma_cross", prediction=Prediction.DOWN, confidence=1.0),)),
        is_actionable=True, data_quality=0.95, features_used=("rsi",), feature_values={"rsi": 55.5},
    )
    run = AgentRun.start(key="k", version="1", host="h", pid=1, config_digest="d", components=("agent",),
                         model="m", decision_config={"predictor.name": "ensemble"}, at=start)
    run.beat(at=start + timedelta(seconds=5), candles_processed=3, feed_lag=0.5)
    run.save_state(covers=9, sha256="12" * 32, state_sha256="34" * 32, candles=3, commands_read=4, format="pickle-5",
                   release="0.4", at=start + timedelta(seconds=5))
    run.stop(reason="done", clean=True, at=start + timedelta(seconds=6))
    gateway = Gateway.start(key="g", kind="api", host="h", pid=2, at=start)
    gateway.connect_client(session_id="s1", channel="ws", peer="127.0.0.1:1", at=start)
    gateway.refuse_command(channel="telegram", peer="chat:9", command="/halt", reason="not allowed", at=start)
    gateway.connect_client(session_id="s2", channel="ws", peer="127.0.0.1:2", at=start)
    gateway.disconnect_client(session_id="s1", reason="closed", at=start + timedelta(seconds=3))
    gateway.stop(reason="shutdown", at=start + timedelta(seconds=4))
    commands = [ControlCommand.issue(UUID(int=n + 1), command, "paper", reason="r", by="api", channel="http", at=start)
                for n, command in enumerate(("halt", "resume", "resume"))]  # applied, applied, refused (not halted)
    for position, command in enumerate(commands, start=100):
        apply_command(account, command.pending_events[0], position)
    checkpoint = Checkpoint.signed(UUID(int=7), 12, root_hash="ab" * 32, business_time="2024-03-01T12:00:00.000000Z",
                                   recorded_time="2024-03-01T12:00:06.000000Z", key_id="cd" * 32,
                                   signature="ef" * 64, at=start)
    return [account, market, run, gateway, *commands, checkpoint]
