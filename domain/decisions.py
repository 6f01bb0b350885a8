"""The settings a trading decision depends on: recorded with every agent run, so a replay decides the same.

`AgentRun.Started.decision_config` records them as the stores have from the start: dotted setting names
to their text (`{"trading.fee_rate": "0.001", "risk.cooldown_candles": "3", ...}`). Each field's
encoded name is its dotted setting name, so the struct reads and writes that shape directly. A
setting added after stores were recorded has a default: the value every earlier run decided with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

UNSET = "unset"  # how a rule left out of a recording is shown
Sections = Mapping[str, Mapping[str, Any]]  # settings as plain data: section -> name -> value
Rule = Decimal | dict[str, Decimal] | None  # a market rule: for every symbol, by symbol, or none


class DecisionSettings(msgspec.Struct, frozen=True, kw_only=True):
    predictor_name: str = msgspec.field(name="predictor.name")
    predictor_seed: int = msgspec.field(name="predictor.seed")
    predictor_fast: int = msgspec.field(name="predictor.fast")
    predictor_slow: int = msgspec.field(name="predictor.slow")
    fee_rate: Decimal = msgspec.field(name="trading.fee_rate")
    slippage_bps: Decimal = msgspec.field(name="trading.slippage_bps")
    position_size: Decimal = msgspec.field(name="trading.position_size")
    max_daily_loss_percent: Decimal = msgspec.field(name="risk.max_daily_loss_percent")
    max_drawdown_percent: Decimal = msgspec.field(name="risk.max_drawdown_percent")
    max_consecutive_losses: int = msgspec.field(name="risk.max_consecutive_losses")
    cooldown_candles: int = msgspec.field(name="risk.cooldown_candles")
    # Added later: runs recorded before decided with these.
    exit_on_drawdown: bool = msgspec.field(default=True, name="risk.exit_on_drawdown")
    calendar: str = msgspec.field(default="24/7", name="market.calendar")
    # The market's trading rules (domain.marketrules), one value or one per symbol; None: no such rule.
    amount_step: Rule = msgspec.field(default=None, name="market.amount_step")
    price_step: Rule = msgspec.field(default=None, name="market.price_step")
    min_amount: Rule = msgspec.field(default=None, name="market.min_amount")
    min_notional: Rule = msgspec.field(default=None, name="market.min_notional")
    # A user strategy's identity (docs/strategies.md): the SHA-256 of its file, its name and version, and
    # every parameter's value as text. None (left out of the recording): the built-in predictor decided.
    strategy_digest: str | None = msgspec.field(default=None, name="strategy.digest")
    strategy_name: str | None = msgspec.field(default=None, name="strategy.name")
    strategy_version: str | None = msgspec.field(default=None, name="strategy.version")
    strategy_params: dict[str, str] | None = msgspec.field(default=None, name="strategy.params")
    # A portfolio's entries (docs/portfolios.md). None (left out of the recording): no limit on open trades,
    # and each entry sized by trading.position_size of equity, as every run before them.
    max_open_trades: int | None = msgspec.field(default=None, name="trading.max_open_trades")
    stake_amount: Decimal | None = msgspec.field(default=None, name="trading.stake_amount")
    # Exits and limit orders (docs/exits.md). None (left out of the recording): that exit is off, orders are
    # market orders (a limit's offset 0, its timeout 1 candle), as every run before them decided.
    stoploss_percent: Decimal | None = msgspec.field(default=None, name="exits.stoploss_percent")
    take_profit_percent: Decimal | None = msgspec.field(default=None, name="exits.take_profit_percent")
    trailing_stop_percent: Decimal | None = msgspec.field(default=None, name="exits.trailing_stop_percent")
    roi: dict[str, Decimal] | None = msgspec.field(default=None, name="exits.roi")
    max_holding_candles: int | None = msgspec.field(default=None, name="exits.max_holding_candles")
    entry_order: str | None = msgspec.field(default=None, name="trading.entry_order")
    exit_order: str | None = msgspec.field(default=None, name="trading.exit_order")
    limit_offset_bps: Decimal | None = msgspec.field(default=None, name="trading.limit_offset_bps")
    order_timeout_candles: int | None = msgspec.field(default=None, name="trading.order_timeout_candles")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The dotted setting names, in field order."""
        return tuple(f.encode_name for f in msgspec.structs.fields(cls))

    @classmethod
    def of(cls, sections: Sections) -> DecisionSettings:
        """The decision settings among all settings."""
        chosen = {}
        for name in cls.names():
            section, key = name.split(".")
            chosen[name] = sections[section][key]
        return msgspec.convert(chosen, cls, strict=False)

    @classmethod
    def from_recorded(cls, config: Mapping[str, str]) -> DecisionSettings:
        """What a run recorded (`decision_config`); settings it predates take their defaults."""
        # A rule by symbol is recorded as JSON text (`recorded`).
        decoded = {name: json.loads(text) if text.startswith("{") else text for name, text in config.items()}
        return msgspec.convert(decoded, cls, strict=False)

    def recorded(self) -> dict[str, str]:
        """The shape `decision_config` records; an unset rule is left out, as runs before it recorded."""
        return {name: json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
                for name, value in msgspec.to_builtins(self).items() if value is not None}

    def applied_to(self, sections: Sections) -> dict[str, dict[str, Any]]:
        """All settings with these decision settings in place of theirs."""
        replaced = {section: dict(values) for section, values in sections.items()}
        for name, value in msgspec.to_builtins(self).items():
            section, key = name.split(".")
            replaced.setdefault(section, {})[key] = value
        return replaced

    def changes_from(self, recorded: DecisionSettings) -> dict[str, tuple[str, str]]:
        """Setting name -> (recorded, now) for each that differs, compared as the text a run records."""
        before, now = recorded.recorded(), self.recorded()
        return {name: (before.get(name, UNSET), now.get(name, UNSET)) for name in self.names()
                if before.get(name) != now.get(name)}


def digest_of(decision_config: Mapping[str, str]) -> str:
    """SHA-256 (hex) of a recorded `decision_config`: its JSON with sorted keys, no spaces, non-ASCII escaped
    as \\uXXXX (Python's `json.dumps(config, sort_keys=True, separators=(",", ":"))`; docs/audit.md)."""
    text = json.dumps(dict(decision_config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
