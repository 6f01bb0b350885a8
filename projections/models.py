"""The model scoreboard: every recorded prediction scored once its market's next candle has closed.

Rules (docs/models.md has them with the formulas):
- A signal on the candle that opens at t holds the predictor's call (its
  model_name) and, for an ensemble, each member's. They are scored when the
  market's next candle closes, against the two closes: a call `up` is a hit
  when the next close is strictly above this close, `down` when strictly
  below; a flat close is a miss for both. `hold` is no call: it counts as a
  scored prediction and nothing else.
- The probability a call's Brier term scores is its confidence read as
  P(the call is right): (confidence - hit)^2, hit 1 or 0. The online models'
  confidence is max(p_up, 1 - p_up), exactly that probability.
- A round trip (position from zero back to zero, as projections.portfolio's
  trades) belongs to the models that called `up` on the signal its opening
  buy order was placed on (the order's signal_ref); its pnl (realised, net of
  every leg's fee) is credited to each of them when it closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from tradeledger.domain.account import Account
from tradeledger.domain.ids import market_id
from tradeledger.domain.market import Market
from tradeledger.domain.values import MemberPrediction, Prediction, Side
from tradeledger.projections.fold import EventHandler, Fold, Projection, Recorded, event_view
from tradeledger.projections.models_rows import (
    BUCKETS,
    CALIBRATION,
    ENTRIES,
    RECENT,
    SCORES,
    TRADE_WINDOW,
    TRIPS,
    WATCH,
    WINDOW,
    CalibrationRow,
    EntryRow,
    ModelRow,
    RecentRow,
    Role,
    TripRow,
    WatchRow,
)
from tradeledger.projections.rows import RowSource, RowTable, Sink

ZERO = Decimal(0)


def hit(prediction: Prediction, close: Decimal, next_close: Decimal) -> bool | None:
    """Whether a call was right; None for hold, which calls nothing."""
    if prediction is Prediction.UP:
        return next_close > close
    if prediction is Prediction.DOWN:
        return next_close < close
    return None


def bucket(confidence: float) -> int:
    """The calibration bucket of a confidence: [i/10, (i+1)/10), with 1.0 in the last one."""
    index = int(confidence * BUCKETS)
    return index if 0 <= index < BUCKETS else 0 if index < 0 else BUCKETS - 1


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def voters(calls: tuple[MemberPrediction, ...]) -> tuple[str, ...]:
    return tuple(call.name for call in calls if call.prediction is Prediction.UP)


class ModelsFold(Fold):
    def __init__(self, sink: Sink) -> None:
        super().__init__(sink)
        self.models: dict[str, ModelRow] = {}
        self.calibration: dict[tuple[str, int], CalibrationRow] = {}
        self.recent: dict[tuple[str, int], RecentRow] = {}
        self.watch: dict[UUID, WatchRow] = {}
        self.entries: dict[UUID, EntryRow] = {}
        self.trips: dict[tuple[UUID, str], TripRow] = {}
        self.touched: set[int] = set()  # ids of the score, bucket and market rows put in this batch

    # A signal's features are most of its payload and the scoreboard reads none of them.
    views = {Market.SignalGenerated: event_view(Market.SignalGenerated, "candle_time", "model_name", "prediction",
                                                "confidence", "individual_predictions")}

    def handlers_by_type(self) -> dict[type, EventHandler]:
        return {
            Market.CandleClosed: self.candle_closed, Market.SignalGenerated: self.signal_generated,
            Account.OrderPlaced: self.order_placed, Account.OrderFilled: self.order_filled,
            Account.OrderCancelled: self.order_cancelled,
        }

    @classmethod
    def restore(cls, rows: RowSource[Any], sink: Sink) -> ModelsFold:
        fold = cls(sink)
        fold.models = {m.model: m for m in rows(SCORES)}
        fold.calibration = {(c.model, c.bucket): c for c in rows(CALIBRATION)}
        fold.recent = {(r.model, r.slot): r for r in rows(RECENT)}
        fold.watch = {w.market_id: w for w in rows(WATCH)}
        fold.entries = {e.order_id: e for e in rows(ENTRIES)}
        fold.trips = {(t.account_id, t.symbol): t for t in rows(TRIPS)}
        return fold

    def relevant(self, events: Sequence[Recorded]) -> Sequence[Recorded]:
        # Every event of a batch is relevant; a new batch only means its rows must be put again.
        self.touched.clear()
        return events

    def changed(self, table: RowTable[Any], row: Any) -> None:
        """Put a row mutated in place once per batch: both sinks keep the object they were given until the
        batch is written, so later changes in the batch are in it. A rebuild puts these rows several times
        per candle, and putting them cost more than scoring."""
        if id(row) not in self.touched:
            self.touched.add(id(row))
            self.sink.put(table, row)

    # -- predictions ------------------------------------------------------------

    def candle_closed(self, e: Market.CandleClosed, _position: int) -> None:
        watched = self.watch.get(e.originator_id)
        if watched is None:
            watched = self.watch[e.originator_id] = WatchRow(market_id=e.originator_id, close=e.close,
                                                             candle_time=e.open_time, signal_time=None, calls=())
        elif watched.signal_time == watched.candle_time:
            for call in watched.calls:
                self.score(call, watched.candle_time, watched.close, e.close)
        watched.close, watched.candle_time, watched.signal_time, watched.calls = e.close, e.open_time, None, ()
        self.changed(WATCH, watched)

    def signal_generated(self, e: Any, _position: int) -> None:  # the view of Market.SignalGenerated above
        watched = self.watch.get(e.originator_id)
        if watched is None or watched.candle_time != e.candle_time:
            return  # a signal without its candle has no close to be scored against
        own = MemberPrediction(name=e.model_name, prediction=e.prediction, confidence=e.confidence)
        watched.signal_time, watched.calls = e.candle_time, (own, *e.individual_predictions)
        self.changed(WATCH, watched)
        self.known(e.model_name, "predictor")
        for member in e.individual_predictions:
            self.known(member.name, "member")

    def known(self, name: str, role: Role) -> None:
        row = self.models.get(name)
        if row is None:
            row = self.models[name] = ModelRow(
                model=name, role=role, predictions=0, up_calls=0, down_calls=0, hits=0, brier_sum=0.0,
                trades=0, wins=0, pnl=ZERO, recent_trades=(), last_candle_time=None)
        elif row.role == role:
            return
        row.role = role
        self.changed(SCORES, row)

    def score(self, call: MemberPrediction, at: datetime, close: Decimal, next_close: Decimal) -> None:
        row = self.models[call.name]
        row.predictions += 1
        row.last_candle_time = at
        self.changed(SCORES, row)
        right = hit(call.prediction, close, next_close)
        if right is None:
            return
        if call.prediction is Prediction.UP:
            row.up_calls += 1
        else:
            row.down_calls += 1
        row.hits += right
        row.brier_sum += (call.confidence - right) ** 2
        self.remember(call.name, (row.up_calls + row.down_calls - 1) % WINDOW, call.confidence, right)
        self.calibrate(call.name, call.confidence, right)

    def remember(self, name: str, slot: int, confidence: float, right: bool) -> None:
        key = (name, slot)
        row = self.recent.get(key)
        if row is None:
            row = self.recent[key] = RecentRow(model=name, slot=slot, hit=right, confidence=confidence)
        else:
            row.hit, row.confidence = right, confidence
        self.changed(RECENT, row)

    def calibrate(self, name: str, confidence: float, right: bool) -> None:
        key = (name, bucket(confidence))
        row = self.calibration.get(key)
        if row is None:
            row = self.calibration[key] = CalibrationRow(model=name, bucket=key[1], count=0, confidence_sum=0.0,
                                                         hits=0)
        row.count += 1
        row.confidence_sum += confidence
        row.hits += right
        self.changed(CALIBRATION, row)

    # -- trades they voted for ------------------------------------------------------

    def order_placed(self, e: Account.OrderPlaced, _position: int) -> None:
        if e.side is Side.BUY:
            entry = self.entries[e.order_id] = EntryRow(order_id=e.order_id, voters=self.voters_of(e.signal_ref))
            self.sink.put(ENTRIES, entry)

    def voters_of(self, signal_ref: str) -> tuple[str, ...]:
        """Who called up on the signal an order names (`SYMBOL TIMEFRAME CANDLE_TIME`, domain.trader)."""
        parts = signal_ref.rsplit(" ", 2)
        if len(parts) != 3:
            return ()  # an order placed on no signal
        symbol, timeframe, time = parts
        watched = self.watch.get(market_id(symbol, timeframe))
        if watched is None or watched.signal_time is None or _time(time) != watched.signal_time:
            return ()
        return voters(watched.calls)

    def order_cancelled(self, e: Account.OrderCancelled, _position: int) -> None:
        self.drop_entry(e.order_id)

    def drop_entry(self, order_id: UUID) -> EntryRow | None:
        entry = self.entries.pop(order_id, None)
        if entry is not None:
            self.sink.delete(ENTRIES, entry)
        return entry

    def order_filled(self, e: Account.OrderFilled, _position: int) -> None:
        entry = self.drop_entry(e.order_id)
        key = (e.originator_id, e.symbol)
        trip = self.trips.get(key)
        if trip is None:
            trip = self.trips[key] = TripRow(account_id=e.originator_id, symbol=e.symbol, quantity=ZERO, pnl=ZERO,
                                             voters=() if entry is None else entry.voters)
        trip.pnl -= e.fee
        if e.side is Side.BUY:
            trip.quantity += e.quantity
        else:
            trip.quantity -= e.quantity
            trip.pnl += e.realised_pnl
        if trip.quantity:
            self.sink.put(TRIPS, trip)
            return
        del self.trips[key]
        self.sink.delete(TRIPS, trip)
        for name in trip.voters:
            self.credit(self.models[name], trip.pnl)

    def credit(self, row: ModelRow, pnl: Decimal) -> None:
        row.trades += 1
        row.wins += pnl > 0
        row.pnl += pnl
        row.recent_trades = (*row.recent_trades[1 - TRADE_WINDOW:], pnl)
        self.changed(SCORES, row)


MODELS_PROJECTION = Projection("models", (SCORES, RECENT, CALIBRATION, WATCH, ENTRIES, TRIPS), ModelsFold)
