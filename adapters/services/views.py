"""What crosses the HTTP and WebSocket boundary: msgspec structs, documented in the OpenAPI schema.

Money is `Decimal` and is sent as a JSON string (exact); times are UTC
ISO-8601. The WebSocket messages are the same structs as `GET /api/updates`
returns, so the stream is described by the OpenAPI document too.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from tradeledger.domain.text import MAX_REASON
from tradeledger.domain.values import MemberPrediction, OrderType, Prediction, Side

MAX_POSITION = 2**63 - 1  # log positions are 64-bit signed integers in both databases

Topic = Literal["signals", "orders", "fills", "portfolio", "health", "activity"]
ALL_TOPICS: frozenset[str] = frozenset(Topic.__args__)  # type: ignore[attr-defined]

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON,
                                     description="why, for the audit log; no control characters but tab and "
                                                 "newline (see domain.text)")]


class ErrorBody(msgspec.Struct, kw_only=True):
    status_code: int
    detail: str
    field: str | None = None


# -- portfolio ------------------------------------------------------------------


class PortfolioView(msgspec.Struct, kw_only=True):
    account: str
    quote_currency: str
    initial_balance: Decimal
    cash: Decimal
    equity: Decimal
    realised_pnl: Decimal  # = gross_pnl (kept for clients that read it)
    gross_pnl: Decimal  # closed positions' result before fees
    net_pnl: Decimal  # gross_pnl - fees (every fee paid, an open position's entry fee included)
    unrealised_pnl: Decimal
    position_value: Decimal  # the open positions at their last price (at cost before one): equity - cash
    fees: Decimal
    return_percent: Decimal
    halted: bool
    halted_rule: str | None
    halted_reason: str | None
    open_orders: int
    trades_closed: int
    entries_stopped: bool  # stop_entry: entries are rejected, exits go on (until start_entry)
    opened_at: datetime
    mark_time: datetime | None
    position: int  # the log position the portfolio read model has applied; every field is as of it


class PositionView(msgspec.Struct, kw_only=True):
    symbol: str
    quantity: Decimal
    average_price: Decimal
    cost: Decimal
    last_price: Decimal | None
    unrealised_pnl: Decimal
    opened_at: datetime


class OrderView(msgspec.Struct, kw_only=True):
    order_id: UUID
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    placed_at: datetime
    signal_ref: str
    reason: str
    status: Literal["open", "filled", "cancelled"]
    closed_at: datetime | None = None
    fill_price: Decimal | None = None
    filled_quantity: Decimal | None = None
    fee: Decimal | None = None
    close_reason: str | None = None
    limit_price: Decimal | None = None  # a limit or stop order's level
    exit_reason: str | None = None  # a sell's (docs/exits.md); None when placed before exit reasons were recorded


class FillView(msgspec.Struct, kw_only=True):
    position: int
    order_id: UUID
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    realised_pnl: Decimal  # the fill's gross result: a sell's value less the cost of what it sold (0 for a buy)
    filled_at: datetime


class TradeView(msgspec.Struct, kw_only=True):
    """A round trip: from a position opening from zero until it is back at zero."""

    seq: int
    symbol: str
    entry_time: datetime
    exit_time: datetime
    entry_price: Decimal
    exit_price: Decimal
    quantity: Decimal
    fees: Decimal  # both legs'
    pnl: Decimal  # = net_pnl (kept for clients that read it)
    gross_pnl: Decimal  # exit value - entry cost, before fees
    net_pnl: Decimal  # gross_pnl - fees
    exit_reason: str = "signal"  # why it closed: signal, stoploss, take_profit, ... (docs/exits.md)


class EquityPoint(msgspec.Struct, kw_only=True):
    time: datetime
    equity: Decimal


class DailyPnlView(msgspec.Struct, kw_only=True):
    day: date
    pnl: Decimal


class CandleView(msgspec.Struct, kw_only=True):
    """One closed candle of a market, as recorded (`Market.CandleClosed`)."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: datetime  # the event's business time: when the candle closed


class CandlesView(msgspec.Struct, kw_only=True):
    symbol: str
    timeframe: str
    candles: list[CandleView]  # oldest first


# -- signals --------------------------------------------------------------------


class SignalView(msgspec.Struct, kw_only=True):
    """The prediction response: the latest signal of a symbol and timeframe, and until when it holds."""

    symbol: str
    timeframe: str
    prediction: Prediction
    confidence: float
    is_actionable: bool
    # When the signal was produced, the close of its candle; the row's `generated_at`, sent as `timestamp`.
    generated_at: datetime = msgspec.field(name="timestamp")
    candle_time: datetime
    individual_predictions: tuple[MemberPrediction, ...]
    data_quality: float
    model_name: str
    model_version: str
    features_used: tuple[str, ...]
    fresh_until: datetime
    position: int
    error: str = ""  # a user strategy that raised, answered nonsense or was too slow: why this is a hold


# -- operations -----------------------------------------------------------------


class Readiness(msgspec.Struct, kw_only=True):
    ready: bool
    store_reachable: bool
    read_models: bool
    head: int | None
    reasons: list[str]


class SessionView(msgspec.Struct, kw_only=True):
    gateway_id: UUID
    session_id: str
    channel: str
    peer: str
    connected_at: datetime


class GatewayView(msgspec.Struct, kw_only=True):
    gateway_id: UUID
    kind: str
    host: str
    pid: int
    started_at: datetime
    open_sessions: int


class ConnectionsView(msgspec.Struct, kw_only=True):
    open: int
    gateways: list[GatewayView]  # the gateways still running
    sessions: list[SessionView]
    position: int  # the log position the connections read model has applied; every field is as of it


class ActivityView(msgspec.Struct, kw_only=True):
    position: int
    at: datetime
    type: str
    stream: str
    text: str


class ControlRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class ForceRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9/:._-]+$",
                                        description="the market, e.g. ETH/BTC; force-exit also takes 'all'")]
    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON, description="why, for the audit log")] = ""


class ControlResult(msgspec.Struct, kw_only=True):
    action: Literal["halt", "resume", "stop_entry", "start_entry", "force_exit", "force_enter"]
    status: Literal["applied", "pending"]  # pending: issued, not applied by the agent within the wait (202)
    command_id: UUID
    halted: bool  # halt/resume: the trading state once the command is applied (false for the others)
    # applied: the log position of the command's first recorded effect (TradingHalted / TradingResumed,
    # EntriesSwitched, a forced order or its rejection); pending: of the command's Issued event
    position: int
    by: str
    reason: str
    symbol: str = ""  # force_exit / force_enter: the market asked for ("all": every position)


# -- the update stream (WebSocket messages and GET /api/updates) ----------------


class OrderUpdate(msgspec.Struct, kw_only=True):
    """An order was placed, cancelled, or refused before it existed (rejected: no order id)."""

    status: Literal["open", "cancelled", "rejected"]
    order_id: UUID | None
    symbol: str | None
    side: Side | None
    quantity: Decimal | None
    reason: str


class MarkUpdate(msgspec.Struct, kw_only=True):
    """A candle closed: the price positions in `symbol` are now valued at (its close), and the whole candle."""

    symbol: str
    timeframe: str
    price: Decimal
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal


class TradingUpdate(msgspec.Struct, kw_only=True):
    halted: bool
    rule: str | None
    reason: str
    by: str


class AgentUpdate(msgspec.Struct, kw_only=True):
    run_id: UUID
    status: Literal["started", "running", "stopped"]
    candles_processed: int | None = None
    feed_lag: float | None = None
    reason: str | None = None


class _Message(msgspec.Struct, tag_field="type"):
    position: int
    at: datetime


class SignalMessage(_Message, tag="signal"):
    data: SignalView


class OrderMessage(_Message, tag="order"):
    data: OrderUpdate


class FillMessage(_Message, tag="fill"):
    data: FillView


class MarkMessage(_Message, tag="mark"):
    data: MarkUpdate


class TradingMessage(_Message, tag="trading"):
    data: TradingUpdate


class AgentMessage(_Message, tag="agent"):
    data: AgentUpdate


class ActivityMessage(_Message, tag="activity"):
    data: ActivityView


Message = SignalMessage | OrderMessage | FillMessage | MarkMessage | TradingMessage | AgentMessage | ActivityMessage


class UpdatesPage(msgspec.Struct, kw_only=True):
    """The messages the log produced after `after`, up to and including position `last`."""

    after: int
    last: int  # ask for `?after=<last>` to continue
    messages: list[Message]
