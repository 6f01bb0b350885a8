"""Typed, immutable settings and the error raised when they do not validate."""

from __future__ import annotations

import hashlib
import re
import reprlib
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

REDACTED = "<secret>"
SECRET_KEYS = frozenset({"api.token", "telegram.token"})
UNKNOWN_KEY = "unknown key"

# Greedy up to the last "@": an unescaped "@" inside a password must not leak its tail.
_USERINFO_PASSWORD = re.compile(r"^([\w+]+://[^:/@]*:).*@")
# libpq also takes the password as a query parameter.
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with any password replaced by `<secret>`."""
    url = _USERINFO_PASSWORD.sub(rf"\g<1>{REDACTED}@", url)
    return _QUERY_PASSWORD.sub(rf"\g<1>{REDACTED}", url)


def public_value(key: str, value: Any) -> Any:
    """`value` of the dotted `key` as it may be shown in logs, errors and the API."""
    if key in SECRET_KEYS:
        return None if value is None else REDACTED
    if key == "database.url" and isinstance(value, str):
        return mask_url(value)
    return value


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str


class TradingSettings(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    quote_currency: str | None  # None: the traded markets' quote currency (`auto`)
    initial_balance: Decimal
    symbols: tuple[str, ...]
    timeframe: str
    update_interval: float  # a file replayed as if live (`--data`): seconds per candle time not yet closed
    speed: float = 1.0  # the synthetic demo: candle times per candle time (never ahead of the wall clock)
    fee_rate: Decimal
    slippage_bps: Decimal
    position_size: Decimal
    max_open_trades: int | None = None  # positions (or pending entries) at once; None: no limit
    stake_amount: Decimal | None = None  # quote currency per entry; None: position_size of equity
    # Limit orders (docs/exits.md); None: market orders, a limit's offset 0 and timeout 1 candle.
    entry_order: str | None = None  # "market" or "limit"
    exit_order: str | None = None  # a signal exit's
    limit_offset_bps: Decimal | None = None  # a buy limit this far below the signal's close, a sell limit above
    order_timeout_candles: int | None = None  # a limit order not filled after this many candles is cancelled


class RiskSettings(msgspec.Struct, frozen=True, kw_only=True):
    max_daily_loss_percent: Decimal
    max_drawdown_percent: Decimal
    max_consecutive_losses: int
    cooldown_candles: int
    exit_on_drawdown: bool


class PredictorSettings(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    seed: int
    fast: int
    slow: int


class AgentSettings(msgspec.Struct, frozen=True, kw_only=True):
    heartbeat_interval: float
    checkpoint_every: int = 10_000  # candles between state checkpoints (0: only on a clean stop)


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    token: str | None = None
    ws_send_queue: int  # messages a WebSocket connection may have waiting before it is closed (4000)
    ws_send_timeout: float  # seconds one WebSocket send may wait for the peer before it is dropped (4001)


class TelegramSettings(msgspec.Struct, frozen=True, kw_only=True):
    token: str | None = None
    allowed_chat_ids: tuple[int, ...]
    base_url: str


class ProjectionsSettings(msgspec.Struct, frozen=True, kw_only=True):
    poll_interval: float
    health_file: str | None = None


# A market rule: one value for every symbol, one per symbol ({"ETH/BTC": ...}), or unset (no such rule).
StepSetting = Decimal | dict[str, Decimal] | None


class MarketSettings(msgspec.Struct, frozen=True, kw_only=True):
    calendar: str
    amount_step: StepSetting = None
    price_step: StepSetting = None
    min_amount: StepSetting = None
    min_notional: StepSetting = None


class ExchangeSettings(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None = None  # a ccxt exchange id such as binance; None: no exchange (files and the synthetic demo)
    api_url: str | None = None  # replaces the exchange's REST base URL (tests, regional endpoints)
    symbols: tuple[str, ...] = ()  # empty: trading.symbols
    timeframe: str | None = None  # None: trading.timeframe
    timeout: float = 10.0
    retries: int = 5
    use_market_fee: bool = True  # trading.fee_rate becomes the market's taker fee
    poll_interval: float = 5.0  # live feed: longest sleep between two looks at the exchange (seconds)
    outage_alert_after: float = 300.0  # live feed: `down` when the next candle is this many seconds overdue


class AuditSettings(msgspec.Struct, frozen=True, kw_only=True):
    signing_key: str | None = None  # path of the Ed25519 private key (PKCS8 PEM); None: no signed checkpoints
    checkpoint_every: int = 10_000  # events between cadence checkpoints
    checkpoint_dir: str | None = None  # every checkpoint is also appended to DIR/checkpoints.jsonl


class StrategySettings(msgspec.Struct, frozen=True, kw_only=True):
    """A user strategy (docs/strategies.md). `path` is `FILE.py:ClassName`; None: the built-in `predictor`.

    `params` are the user's overrides of the strategy's parameters, as given (text or TOML scalars). The
    composition root resolves the strategy before trading (`adapters.strategies.resolved`): then `params`
    holds every parameter as the text recorded, and `digest` (SHA-256 of the file), `name` and `version`
    are the loaded strategy's, so `DecisionSettings` records them with every run.
    """

    path: str | None = None
    params: dict[str, Any] | None = None
    timeout: float = 1.0  # seconds one decide() may take; a slower one records hold (measured after it returns)
    digest: str | None = None
    name: str | None = None
    version: str | None = None


class ExitsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The exits that protect a position (docs/exits.md); None is off."""

    stoploss_percent: Decimal | None = None
    take_profit_percent: Decimal | None = None
    trailing_stop_percent: Decimal | None = None  # below the highest close since the entry
    roi: dict[str, Decimal] | None = None  # minutes held (text) -> minimum profit percent
    max_holding_candles: int | None = None


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings
    trading: TradingSettings
    risk: RiskSettings
    predictor: PredictorSettings
    agent: AgentSettings
    api: ApiSettings
    telegram: TelegramSettings
    projections: ProjectionsSettings
    market: MarketSettings
    exchange: ExchangeSettings = ExchangeSettings()
    audit: AuditSettings = AuditSettings()
    strategy: StrategySettings = StrategySettings()
    exits: ExitsSettings = ExitsSettings()

    def redacted(self) -> dict[str, dict[str, Any]]:
        """Every value by section; secrets are `<secret>` when set and None when unset."""
        return {
            section: {
                name: public_value(f"{section}.{name}", value)
                for name, value in msgspec.structs.asdict(getattr(self, section)).items()
            }
            for section in self.__struct_fields__
        }

    def digest(self) -> str:
        """sha256 of the canonical JSON of every non-secret value (the config digest)."""
        public = {
            section: {
                name: _canonical(value)
                for name, value in values.items()
                if f"{section}.{name}" not in SECRET_KEYS
            }
            for section, values in self.redacted().items()
        }
        return hashlib.sha256(msgspec.json.encode(public, order="sorted")).hexdigest()


def _canonical(value: Any) -> Any:
    # Equal settings must digest equally, and Decimal("0.10") == Decimal("0.1").
    return value.normalize() if isinstance(value, Decimal) else value


# A bad value is shown abbreviated: a huge or deeply nested one must not flood (or crash) the report.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 3, 160, 160, 60


class SettingsIssue(NamedTuple):
    """One bad key. `value` is already safe to show (secrets are `<secret>`)."""

    key: str
    value: Any
    expected: str

    def describe(self) -> str:
        if self.expected.startswith(UNKNOWN_KEY):
            return f"{self.key}: {self.expected}"
        shown = REDACTED if self.value == REDACTED else _SHOWN.repr(self.value)
        return f"{self.key}: expected {self.expected}, got {shown}"


class SettingsError(Exception):
    """Every bad key found in one pass; `str()` has one line per key."""

    def __init__(self, errors: list[SettingsIssue]) -> None:
        self.errors = errors
        super().__init__("\n".join(issue.describe() for issue in errors))
