"""The latest signal per symbol and timeframe: the prediction cache, with its own freshness.

Freshness rule. The signal for the candle that opens at `t` is produced when
that candle closes, at `t + tf`. The next one is due when the following candle
closes, at `t + 2*tf`. So a signal is fresh until

    fresh_until = candle_time + 2 * timeframe + SIGNAL_GRACE

and the grace covers the feed's delivery delay and the agent's processing
time (which do not grow with the timeframe). A missed candle makes the cached
signal stale exactly when a newer one should have replaced it; there is no
separate cache TTL to drift out of step with the candle cadence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from operator import attrgetter

import msgspec

from tradeledger.domain.market import Market
from tradeledger.domain.values import MemberPrediction, Prediction, timeframe_delta
from tradeledger.projections.fold import Fold, EventHandler, Projection, Recorded, Undecodable
from tradeledger.projections.rows import RowTable

SIGNAL_GRACE = timedelta(seconds=30)


class SignalRow(msgspec.Struct, kw_only=True):
    symbol: str
    timeframe: str
    candle_time: datetime
    prediction: Prediction
    confidence: float
    is_actionable: bool
    data_quality: float
    model_name: str
    model_version: str
    features_used: tuple[str, ...]
    feature_values: dict[str, float]
    individual_predictions: tuple[MemberPrediction, ...]
    generated_at: datetime
    fresh_until: datetime
    position: int
    error: str = ""  # a user strategy that failed on this candle (the signal is then a hold): what went wrong

    def is_fresh(self, now: datetime) -> bool:
        return now <= self.fresh_until


SIGNALS = RowTable.of(SignalRow, "signals_latest", primary_key=["symbol", "timeframe"])


@lru_cache(maxsize=64)
def freshness(timeframe: str) -> timedelta:
    return 2 * timeframe_delta(timeframe) + SIGNAL_GRACE


class SignalsFold(Fold):
    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {Market.SignalGenerated: self.signal_generated}

    def relevant(self, events: Sequence[Recorded]) -> Sequence[Recorded]:
        # Each signal replaces its market's row, so only a batch's last signal per market can
        # survive it: the others need not even be decoded. Undecodable events are kept.
        latest: dict[object, Recorded] = {}
        for recorded in events:
            if recorded.type is Market.SignalGenerated:
                latest[recorded.stream] = recorded
            elif recorded.type is Undecodable:
                latest[recorded.position] = recorded
        return sorted(latest.values(), key=attrgetter("position"))

    def signal_generated(self, e: Market.SignalGenerated, position: int) -> None:
        self.sink.put(SIGNALS, SignalRow(
            symbol=e.symbol, timeframe=e.timeframe, candle_time=e.candle_time, prediction=e.prediction,
            confidence=e.confidence, is_actionable=e.is_actionable, data_quality=e.data_quality,
            model_name=e.model_name, model_version=e.model_version, features_used=e.features_used,
            feature_values=e.feature_values, individual_predictions=e.individual_predictions,
            generated_at=e.timestamp, fresh_until=e.candle_time + freshness(e.timeframe), position=position,
            error=e.error,
        ))


SIGNALS_PROJECTION = Projection("signals", (SIGNALS,), SignalsFold)
