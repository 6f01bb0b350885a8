"""Load the typed `Settings`, validating every key in one pass.

Precedence, lowest first; each layer replaces whole values (lists are never merged):

1. `settings/default.toml`, shipped next to this module;
2. the user's TOML or YAML file (`settings_file`: `.toml`, `.yaml`, `.yml`), which must exist;
3. environment variables `TRADELEDGER_<SECTION>__<KEY>`, e.g.
   `TRADELEDGER_TRADING__FEE_RATE=0` (names without `__` are not settings and are ignored);
4. `overrides` with dotted keys (`{"database.url": ...}`) from CLI options; None is skipped.

dynaconf reads the files (`settings/files.py`). Environment values and overrides are
applied here from the given mapping, as plain strings: dynaconf would parse them as TOML
and turn a token like `007` into a number. Only an environment value written as a TOML
string or array is read as one, as dynaconf users write them: `'"1000"'` is the text
`1000` (so a number where one is expected), `'["ETH/BTC", "LTC/BTC"]'` a list. Unknown
keys in any layer are errors, so a typo cannot be silently ignored.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from tradeledger.domain.sessions import parse_weekly
from tradeledger.domain.text import MAX_SETTING, recordable
from tradeledger.domain.values import TIMEFRAME_EXPECTED, timeframe_seconds
from tradeledger.settings.files import FORMATS, UnreadableFile, read_settings_file
from tradeledger.settings.model import (
    REDACTED,
    UNKNOWN_KEY,
    Settings,
    SettingsError,
    SettingsIssue,
    public_value,
)

DEFAULT_FILE = Path(__file__).parent / "default.toml"
ENV_PREFIX = "TRADELEDGER_"
PREDICTORS = ("ensemble", "sma_cross", "logistic", "hoeffding_tree")
AUTO = "auto"
DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgresql+psycopg://")

Parse = Callable[[Any], Any]


class Rule(NamedTuple):
    parse: Parse  # raises ValueError when the value does not fit
    expected: str


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    # Names and symbols are recorded in the log: the same rule as every other recorded text.
    return recordable("setting", value, max_length=MAX_SETTING)  # InvalidText is a ValueError


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(value)
    try:
        # Through str, so a TOML float 0.1 becomes Decimal("0.1"), not its binary expansion.
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(value) from None
    if not number.is_finite():
        raise ValueError(value)
    return number


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(value)
    return int(value)


_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str) or value.strip().lower() not in _BOOLEANS:  # env and CLI give text
        raise ValueError(value)
    return _BOOLEANS[value.strip().lower()]


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _quote_currency(value: Any) -> str | None:
    text = _text(value)
    return None if text == AUTO else text


def _calendar(value: Any) -> str:
    text = _text(value)
    if text in ("24/7", AUTO) or parse_weekly(text) is not None:
        return text
    import exchange_calendars  # only for a named calendar: the import takes about a second

    if text not in exchange_calendars.get_calendar_names():
        raise ValueError(value)
    return text


def _timeframe(value: Any) -> str:
    timeframe_seconds(_text(value))  # InvalidValue is a ValueError
    return value


def _market_rule(value: Any) -> Decimal | dict[str, Decimal]:
    """A decimal > 0 for every symbol, or a table of them by symbol ({"ETH/BTC" = "0.001"})."""
    positive = _check(_decimal, lambda d: Decimal("1E-18") <= d <= Decimal("1E+12"))
    if isinstance(value, dict):
        return {_text(symbol): positive(step) for symbol, step in value.items()}
    return positive(value)


def _exchange(value: Any) -> str:
    text = _text(value)
    import ccxt  # only when an exchange is set: the import takes about 0.25 s

    if text not in ccxt.exchanges:
        raise ValueError(value)
    return text


def _strategy_path(value: Any) -> str:
    """`FILE.py:ClassName`; whether the file and the class exist is checked when the strategy is loaded."""
    text = _text(value)
    path, _, name = text.rpartition(":")
    if not path.endswith(".py") or not name.isidentifier():
        raise ValueError(value)
    return text


def _strategy_params(value: Any) -> dict[str, Any]:
    """A table of parameter values (`[strategy.params]`), or `fast=12,slow=26` from the environment; each is
    converted to its parameter's type when the strategy is loaded (docs/strategies.md)."""
    if isinstance(value, str):
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError(value)
        value = {name.strip(): text.strip() for name, _, text in pairs}
    if not isinstance(value, dict):
        raise ValueError(value)
    params = {_text(name): item for name, item in value.items()}
    if not all(isinstance(item, (str, int, float, bool)) for item in params.values()):
        raise ValueError(value)
    return {name: _text(item) if isinstance(item, str) else item for name, item in params.items()}


def _roi(value: Any) -> dict[str, Decimal]:
    """Freqtrade's minimal_roi: {"0": 4, "30": 2}; keys are whole minutes (text, as TOML keys are)."""
    if not isinstance(value, dict) or not value:
        raise ValueError(value)
    minutes = [_check(_integer, lambda n: 0 <= n <= 10_000_000)(key) for key in value]
    return {str(m): _check(_decimal, lambda d: -100 < d <= 1_000_000)(v) for m, v in zip(minutes, value.values())}


def _list_of(parse: Parse) -> Parse:
    def run(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str):  # env and CLI give "ETH/BTC,LTC/BTC"
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(value)
        return tuple(parse(item) for item in value)

    return run


def _optional(parse: Parse) -> Parse:
    # An empty env variable is how a shell unsets a value.
    return lambda value: None if value is None or value == "" else parse(value)


def _check(parse: Parse, ok: Callable[[Any], bool]) -> Parse:
    def run(value: Any) -> Any:
        result = parse(value)
        if not ok(result):
            raise ValueError(value)
        return result

    return run


_TEXT = Rule(_text, "a non-empty string without control characters")
_SECRET = Rule(_optional(_text), "a non-empty string (quoted in a file) or unset")
# Bounds keep every value inside what the code computes with: a wait beyond a day overflows some
# platform timers, a balance from 1E+16 exceeds the ledger's exact decimals (28 digits, 12 places),
# a slippage of 100% would sell at a price of zero.
_SECONDS = Rule(_check(_float, lambda s: 0.001 <= s <= 86400), "a number of seconds from 0.001 to 86400")
_WINDOW = Rule(_check(_integer, lambda n: 1 <= n <= 1_000_000), "an integer from 1 to 1000000")
_POSITIVE_DECIMAL = Rule(_check(_decimal, lambda d: d > 0), "a decimal > 0")
_ORDER_TYPE = Rule(_optional(_check(_text, ("market", "limit").__contains__)), "market or limit, or unset (market)")
# A stop 100% or more below the entry would be at a price of zero or less.
_PERCENT_BELOW = Rule(_optional(_check(_decimal, lambda d: 0 < d < 100)), "a percent > 0 and < 100, or unset (off)")
_MARKET_RULE = Rule(_optional(_market_rule), "a decimal from 1E-18 to 1E+12, a table of them by symbol, or unset")

RULES: dict[str, Rule] = {
    "database.url": Rule(
        # In a SQLite URL '?' starts the query and '#' the fragment: a path holding one would name another file.
        _check(_text, lambda url: url.startswith(DATABASE_SCHEMES)
               and not (url.startswith("sqlite:") and any(c in url for c in "?#"))),
        "a URL starting with " + ", ".join(DATABASE_SCHEMES) + " (a SQLite path without '?' or '#')",
    ),
    "trading.account": _TEXT,
    "trading.quote_currency": Rule(_quote_currency, "a currency code such as USD, or auto (the symbols' quote)"),
    "trading.initial_balance": Rule(
        _check(_decimal, lambda d: Decimal("1E-8") <= d <= Decimal("1E+12")), "a decimal from 1E-8 to 1E+12"
    ),
    "trading.symbols": Rule(_check(_list_of(_text), bool), "a non-empty list of symbols"),
    "trading.timeframe": Rule(_timeframe, TIMEFRAME_EXPECTED),
    "trading.update_interval": _SECONDS,
    "trading.speed": Rule(_check(_float, lambda n: 1 <= n <= 1_000_000), "a number from 1 to 1000000"),
    "trading.fee_rate": Rule(_check(_decimal, lambda d: 0 <= d < 1), "a decimal >= 0 and < 1"),
    "trading.slippage_bps": Rule(_check(_decimal, lambda d: 0 <= d < 10_000), "a decimal >= 0 and < 10000"),
    "trading.position_size": Rule(_check(_decimal, lambda d: 0 < d <= 1), "a decimal > 0 and <= 1"),
    "trading.max_open_trades": Rule(_optional(_check(_integer, lambda n: 1 <= n <= 1_000_000)),
                                    "an integer from 1 to 1000000, or unset (no limit)"),
    "trading.stake_amount": Rule(_optional(_check(_decimal, lambda d: Decimal("1E-8") <= d <= Decimal("1E+12"))),
                                 "a decimal from 1E-8 to 1E+12, or unset (trading.position_size of equity)"),
    "trading.entry_order": _ORDER_TYPE,
    "trading.exit_order": _ORDER_TYPE,
    "trading.limit_offset_bps": Rule(_optional(_check(_decimal, lambda d: 0 <= d < 10_000)),
                                     "a decimal >= 0 and < 10000, or unset (0)"),
    "trading.order_timeout_candles": Rule(_optional(_check(_integer, lambda n: 1 <= n <= 1_000_000)),
                                          "an integer from 1 to 1000000, or unset (1)"),
    "exits.stoploss_percent": _PERCENT_BELOW,
    "exits.trailing_stop_percent": _PERCENT_BELOW,
    "exits.take_profit_percent": Rule(_optional(_check(_decimal, lambda d: 0 < d <= 1_000_000)),
                                      "a percent > 0 and <= 1000000, or unset (off)"),
    "exits.roi": Rule(_optional(_roi), "a table of minutes held (0, 30, ...) to a minimum profit percent, "
                                       "such as {0 = 4, 30 = 2, 60 = 0}, or unset (off)"),
    "exits.max_holding_candles": Rule(_optional(_check(_integer, lambda n: 1 <= n <= 1_000_000)),
                                      "an integer from 1 to 1000000, or unset (off)"),
    "risk.max_daily_loss_percent": _POSITIVE_DECIMAL,
    "risk.max_drawdown_percent": _POSITIVE_DECIMAL,
    "risk.max_consecutive_losses": Rule(_check(_integer, lambda n: n >= 1), "an integer >= 1"),
    "risk.cooldown_candles": Rule(_check(_integer, lambda n: n >= 0), "an integer >= 0"),
    "risk.exit_on_drawdown": Rule(_boolean, "true or false"),
    "predictor.name": Rule(
        _check(_text, PREDICTORS.__contains__), "one of " + ", ".join(PREDICTORS)
    ),
    "predictor.seed": Rule(_integer, "an integer"),
    "predictor.fast": _WINDOW,
    "predictor.slow": _WINDOW,
    "agent.heartbeat_interval": _SECONDS,
    "agent.checkpoint_every": Rule(_check(_integer, lambda n: 0 <= n <= 2**31), "an integer from 0 to 2147483648"),
    "api.host": _TEXT,
    "api.port": Rule(_check(_integer, lambda n: 0 <= n <= 65535), "an integer from 0 to 65535"),
    "api.token": _SECRET,
    "api.ws_send_queue": Rule(_check(_integer, lambda n: 2 <= n <= 1_000_000), "an integer from 2 to 1000000"),
    "api.ws_send_timeout": _SECONDS,
    "telegram.token": _SECRET,
    "telegram.allowed_chat_ids": Rule(_list_of(_integer), "a list of integer chat ids"),
    "telegram.base_url": Rule(
        _check(_text, lambda url: url.startswith(("http://", "https://"))), "an http(s) URL"
    ),
    "projections.poll_interval": _SECONDS,
    "projections.health_file": Rule(_optional(_text), "a file path or unset"),
    "market.calendar": Rule(_calendar, "24/7, auto, weekly sessions such as 'Mon-Fri 14:30-21:00' (UTC) "
                                       "or an exchange-calendars name such as XNYS"),
    **{f"market.{rule}": _MARKET_RULE for rule in ("amount_step", "price_step", "min_amount", "min_notional")},
    "exchange.name": Rule(_optional(_exchange), "a ccxt exchange id such as binance, or unset"),
    "exchange.api_url": Rule(_optional(_check(_text, lambda url: url.startswith(("http://", "https://")))),
                             "an http(s) URL or unset"),
    "exchange.symbols": Rule(_list_of(_text), "a list of symbols (empty: trading.symbols)"),
    "exchange.timeframe": Rule(_optional(_timeframe), TIMEFRAME_EXPECTED + ", or unset (trading.timeframe)"),
    "exchange.timeout": _SECONDS,
    "exchange.poll_interval": _SECONDS,
    "exchange.outage_alert_after": _SECONDS,
    "exchange.retries": Rule(_check(_integer, lambda n: 0 <= n <= 100), "an integer from 0 to 100"),
    "exchange.use_market_fee": Rule(_boolean, "true or false"),
    "audit.signing_key": Rule(_optional(_text), "a file path or unset"),
    "audit.checkpoint_every": Rule(_check(_integer, lambda n: 1 <= n <= 2**31), "an integer from 1 to 2147483648"),
    "audit.checkpoint_dir": Rule(_optional(_text), "a directory path or unset"),
    "strategy.path": Rule(_optional(_strategy_path), "FILE.py:ClassName (a user strategy) or unset"),
    "strategy.params": Rule(_optional(_strategy_params),
                            "a table of parameter values (NAME = value), or NAME=VALUE,... in the environment"),
    "strategy.timeout": Rule(_check(_float, lambda s: 0.001 <= s <= 3600), "a number of seconds from 0.001 to 3600"),
}


def load_settings(
    settings_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the layers (see the module docstring) and validate; raises SettingsError."""
    merged = read_settings_file(DEFAULT_FILE)
    if settings_file is not None:
        merged.update(_user_file(Path(settings_file)))
    merged.update(_env_layer(os.environ if environ is None else environ))
    merged.update(
        {key.lower(): value for key, value in (overrides or {}).items() if value is not None}
    )
    return _build(merged)


def _user_file(path: Path) -> dict[str, Any]:
    # dynaconf silently skips missing files and unknown suffixes, which would hide a typo.
    if not path.is_file() or path.suffix not in FORMATS:
        expected = "an existing " + ", ".join(FORMATS) + " file"
        raise SettingsError([SettingsIssue("settings_file", str(path), expected)])
    try:
        return read_settings_file(path.resolve())
    except UnreadableFile as error:
        raise SettingsError([SettingsIssue("settings_file", str(path), str(error))]) from None


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        name.removeprefix(ENV_PREFIX).lower().replace("__", "."): _env_value(value)
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and "__" in name.removeprefix(ENV_PREFIX)
    }


def _env_value(text: str) -> Any:
    """A TOML string or array as dynaconf reads it (`'"1000"'` -> `'1000'`), any other text as is."""
    if not text.startswith(('"', "'", "[")):
        return text
    try:
        document = tomllib.loads(f"value = {text}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return text  # then the key's rule reports the text
    value = document.get("value")
    return value if document.keys() == {"value"} and isinstance(value, (str, list)) else text


def validated(values: Mapping[str, Any]) -> dict[str, Any]:
    """Some settings (dotted key -> value; text as in the environment) parsed by their rules; raises
    SettingsError naming every key that is unknown or whose value does not fit (`reproduce --with`)."""
    issues = [_unknown(key) for key in values if key not in RULES]
    parsed = {key: _parse(key, value, issues) for key, value in values.items() if key in RULES}
    if issues:
        raise SettingsError(issues)
    return parsed


def _parse(key: str, value: Any, issues: list[SettingsIssue]) -> Any:
    """The value as its rule parses it; None, with the issue added, when it does not fit."""
    try:
        return RULES[key].parse(value)
    except ValueError:
        issues.append(SettingsIssue(key, public_value(key, value), RULES[key].expected))
        return None


def _build(merged: Mapping[str, Any]) -> Settings:
    issues: list[SettingsIssue] = []
    values = {key: _parse(key, merged.get(key), issues) for key in RULES}
    issues += _cross_checks(values)
    issues += [_unknown(key) for key in sorted(merged.keys() - RULES.keys())]
    if issues:
        raise SettingsError(issues)
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
    return msgspec.convert(sections, Settings)


def _cross_checks(values: Mapping[str, Any]) -> list[SettingsIssue]:
    fast, slow = values.get("predictor.fast"), values.get("predictor.slow")
    if fast is not None and slow is not None and slow <= fast:
        return [SettingsIssue("predictor.slow", slow, f"an integer > predictor.fast ({fast})")]
    return []


def _unknown(key: str) -> SettingsIssue:
    # The value is never kept: an unknown key is often a misspelt secret.
    near = difflib.get_close_matches(key, RULES, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return SettingsIssue(key, REDACTED, UNKNOWN_KEY + hint)


def with_params(settings: Settings, params: list[tuple[str, str]] | None) -> Settings:
    """`--param NAME=VALUE` replaces that one parameter of `strategy.params` and keeps the others."""
    if not params:
        return settings
    merged = {**(settings.strategy.params or {}), **dict(params)}
    return msgspec.structs.replace(settings, strategy=msgspec.structs.replace(settings.strategy, params=merged))
