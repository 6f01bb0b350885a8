"""The model scoreboard's rows and tables (the rules that fill them are in projections.models, docs/models.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

import msgspec
import sqlalchemy as sa

from tradeledger.domain.values import MemberPrediction
from tradeledger.projections.rows import RowTable

Role = Literal["predictor", "member"]
WINDOW = 100  # the rolling window: a model's last WINDOW scored up/down calls
TRADE_WINDOW = 20  # and its last TRADE_WINDOW trades
BUCKETS = 10  # calibration buckets of confidence: [i/10, (i+1)/10), the last one including 1.0


class ModelRow(msgspec.Struct, kw_only=True):
    """One model's score: the predictor (the signal's model_name) or an ensemble member."""

    model: str
    role: Role
    predictions: int  # scored predictions, hold included
    up_calls: int
    down_calls: int
    hits: int
    brier_sum: float  # the sum of (confidence - hit)^2 over the scored calls
    trades: int  # closed round trips whose entry signal had this model calling up
    wins: int
    pnl: Decimal
    recent_trades: tuple[Decimal, ...]  # the pnl of the last TRADE_WINDOW of those trades, oldest first
    last_candle_time: datetime | None  # the candle of the latest scored prediction


class RecentRow(msgspec.Struct, kw_only=True):
    """One of a model's last WINDOW scored calls: call number n (from 0) is in slot n % WINDOW.

    A ring of rows rather than a list in the score row: replacing a 100-item tuple on every call cost
    more than all the rest of scoring it."""

    model: str
    slot: int
    hit: bool
    confidence: float


class CalibrationRow(msgspec.Struct, kw_only=True):
    model: str
    bucket: int
    count: int
    confidence_sum: float
    hits: int


class WatchRow(msgspec.Struct, kw_only=True):
    """A market's last candle and the signal on it that waits for the next candle to be scored."""

    market_id: UUID
    close: Decimal
    candle_time: datetime
    signal_time: datetime | None  # the candle the pending calls are about; None when nothing waits
    calls: tuple[MemberPrediction, ...]  # the predictor's own call first (named by model_name), then the members'


class EntryRow(msgspec.Struct, kw_only=True):
    """An open buy order and the models that called up on the signal it was placed on."""

    order_id: UUID
    voters: tuple[str, ...]


class TripRow(msgspec.Struct, kw_only=True):
    """A round trip in progress: what its close credits to the models that voted for its entry."""

    account_id: UUID
    symbol: str
    quantity: Decimal
    pnl: Decimal  # realised pnl of its sells net of every leg's fee, as projections.portfolio's trades
    voters: tuple[str, ...]


SCORES = RowTable.of(ModelRow, "models_scores", primary_key=["model"])
RECENT = RowTable.of(RecentRow, "models_recent", primary_key=["model", "slot"], types={"slot": sa.Integer})
CALIBRATION = RowTable.of(CalibrationRow, "models_calibration", primary_key=["model", "bucket"],
                          types={"bucket": sa.Integer})
WATCH = RowTable.of(WatchRow, "models_markets", primary_key=["market_id"])
ENTRIES = RowTable.of(EntryRow, "models_entries", primary_key=["order_id"])
TRIPS = RowTable.of(TripRow, "models_trips", primary_key=["account_id", "symbol"])
