"""Reading the scoreboard rows: every model's figures as the API, the bot, the dashboard and the report show them.

`scoreboard(rows)` takes any row source: the stored read model
(`projections.sql.row_source`) or an in-memory fold (`MemoryTables.rows`),
so a backtest's report shows the same figures as a live store's API.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from tradeledger.projections.models_rows import (
    BUCKETS,
    CALIBRATION,
    RECENT,
    SCORES,
    TRADE_WINDOW,
    WINDOW,
    CalibrationRow,
    ModelRow,
    RecentRow,
    Role,
)
from tradeledger.projections.rows import RowSource


class CalibrationBucket(msgspec.Struct, kw_only=True):
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    observed: float | None  # the fraction of its calls that were hits


class ModelView(msgspec.Struct, kw_only=True):
    model: str
    role: Role
    predictions: int
    calls: int
    up_calls: int
    down_calls: int
    holds: int
    hits: int
    hit_rate: float | None
    brier: float | None
    window_calls: int
    window_hit_rate: float | None
    window_brier: float | None
    trades: int
    wins: int
    pnl: Decimal
    window_trades: int
    window_pnl: Decimal
    calibration: list[CalibrationBucket]
    last_candle_time: datetime | None


class ModelsView(msgspec.Struct, kw_only=True):
    position: int
    window: int
    trade_window: int
    models: list[ModelView]


def scoreboard(rows: RowSource[Any], position: int = 0) -> ModelsView:
    """Every model, the predictors first, then the members, each by name."""
    buckets: dict[str, list[CalibrationRow]] = {}
    for row in rows(CALIBRATION):
        buckets.setdefault(row.model, []).append(row)
    recent: dict[str, list[RecentRow]] = {}
    for call in rows(RECENT):
        recent.setdefault(call.model, []).append(call)
    models = sorted(rows(SCORES), key=lambda m: (m.role != "predictor", m.model))
    return ModelsView(position=position, window=WINDOW, trade_window=TRADE_WINDOW,
                      models=[model_view(m, buckets.get(m.model, []), recent.get(m.model, [])) for m in models])


def model_view(row: ModelRow, buckets: list[CalibrationRow], recent: list[RecentRow]) -> ModelView:
    calls = row.up_calls + row.down_calls
    window_hits = sum(call.hit for call in recent)
    # Summed oldest call first, as the whole-history Brier sum is, so equal calls give equal figures.
    ordered = sorted(recent, key=lambda call: (call.slot - calls) % WINDOW)
    window_brier = sum((call.confidence - call.hit) ** 2 for call in ordered)
    return ModelView(
        model=row.model, role=row.role, predictions=row.predictions, calls=calls, up_calls=row.up_calls,
        down_calls=row.down_calls, holds=row.predictions - calls, hits=row.hits,
        hit_rate=_ratio(row.hits, calls), brier=_ratio(row.brier_sum, calls),
        window_calls=len(recent), window_hit_rate=_ratio(window_hits, len(recent)),
        window_brier=_ratio(window_brier, len(recent)),
        trades=row.trades, wins=row.wins, pnl=row.pnl, window_trades=len(row.recent_trades),
        window_pnl=sum(row.recent_trades, Decimal(0)), calibration=calibration(buckets),
        last_candle_time=row.last_candle_time,
    )


def calibration(rows: list[CalibrationRow]) -> list[CalibrationBucket]:
    """All BUCKETS buckets, the empty ones with count 0."""
    by_bucket = {r.bucket: r for r in rows}
    out = []
    for index in range(BUCKETS):
        row = by_bucket.get(index)
        count = 0 if row is None else row.count
        out.append(CalibrationBucket(
            lower=index / BUCKETS, upper=(index + 1) / BUCKETS, count=count,
            mean_confidence=None if row is None else _ratio(row.confidence_sum, count),
            observed=None if row is None else _ratio(row.hits, count)))
    return out


def _ratio(part: float, whole: int) -> float | None:
    return part / whole if whole else None
