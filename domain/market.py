"""A market stream: the candles the agent acted on and the signals it produced."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from eventsourcing.domain import Aggregate

from tradeledger.domain import errors
from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.ids import market_id
from tradeledger.domain.values import Candle, Decision, MemberPrediction, Prediction, require_utc, timeframe_seconds


class Market(LedgerAggregate):
    class Listed(Aggregate.Created):
        symbol: str
        timeframe: str

    class CandleClosed(Aggregate.Event):
        open_time: datetime
        open: Decimal
        high: Decimal
        low: Decimal
        close: Decimal
        volume: Decimal
        quality_flags: tuple[str, ...]

        def apply(self, market: Market) -> None:
            market.last_open_time = self.open_time
            market.candles_closed += 1

    class SignalGenerated(Aggregate.Event):
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
        # Added in 0.3 (older signals decode with ""): why a user strategy failed on this candle, which
        # then records hold (docs/strategies.md).
        error: str = ""

        def apply(self, market: Market) -> None:
            market.last_signal_time = self.candle_time

    def __init__(self, symbol: str, timeframe: str) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.last_open_time: datetime | None = None
        self.last_signal_time: datetime | None = None
        self.candles_closed = 0

    @classmethod
    def list(cls, symbol: str, timeframe: str, *, at: datetime) -> Market:
        timeframe_seconds(timeframe)
        return cls._create(
            cls.Listed,
            id=market_id(symbol, timeframe),
            symbol=symbol,
            timeframe=timeframe,
            timestamp=require_utc("at", at),
        )

    def close_candle(self, candle: Candle, *, quality_flags: tuple[str, ...] = ()) -> None:
        if candle.symbol != self.symbol or candle.timeframe != self.timeframe:
            raise errors.InvalidValue(
                "candle", (candle.symbol, candle.timeframe), f"not for market {self.symbol} {self.timeframe}"
            )
        candle.check()
        if self.last_open_time is not None and candle.open_time <= self.last_open_time:
            raise errors.CandleOutOfOrder(
                f"{self.symbol} {self.timeframe}: candle at {candle.open_time.isoformat()} is not after "
                f"the last recorded candle at {self.last_open_time.isoformat()}"
            )
        self.trigger_event(
            self.CandleClosed,
            open_time=candle.open_time,
            open=candle.open,
            high=candle.high,
            low=candle.low,
            close=candle.close,
            volume=candle.volume,
            quality_flags=quality_flags,
            timestamp=candle.close_time,
        )

    def generate_signal(
        self,
        decision: Decision,
        *,
        is_actionable: bool,
        data_quality: float,
        features_used: tuple[str, ...],
        feature_values: dict[str, float],
    ) -> None:
        if self.last_open_time is None or self.last_open_time == self.last_signal_time:
            raise errors.DomainError(f"{self.symbol}: a signal needs a new candle first")
        self.trigger_event(
            self.SignalGenerated,
            symbol=self.symbol,
            timeframe=self.timeframe,
            candle_time=self.last_open_time,
            prediction=decision.prediction,
            confidence=decision.confidence,
            is_actionable=is_actionable,
            data_quality=data_quality,
            model_name=decision.model_name,
            model_version=decision.model_version,
            features_used=features_used,
            feature_values=feature_values,
            individual_predictions=decision.members,
            error=decision.error,
            timestamp=self.modified_on,
        )

    def candle_at(self, event: CandleClosed) -> Candle:
        """The candle a recorded CandleClosed event describes."""
        return Candle(
            symbol=self.symbol,
            timeframe=self.timeframe,
            open_time=event.open_time,
            open=event.open,
            high=event.high,
            low=event.low,
            close=event.close,
            volume=event.volume,
        )
