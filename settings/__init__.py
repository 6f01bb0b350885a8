"""Typed settings: default file < user file < TRADELEDGER_ env < CLI overrides.

See `settings.loader` for the precedence rules and `settings.model` for the sections.
"""

from tradeledger.settings.loader import load_settings, with_params
from tradeledger.settings.model import (
    AgentSettings,
    ApiSettings,
    DatabaseSettings,
    ExchangeSettings,
    MarketSettings,
    PredictorSettings,
    ProjectionsSettings,
    RiskSettings,
    Settings,
    SettingsError,
    SettingsIssue,
    StrategySettings,
    TelegramSettings,
    TradingSettings,
)

__all__ = [
    "AgentSettings",
    "ApiSettings",
    "DatabaseSettings",
    "ExchangeSettings",
    "MarketSettings",
    "PredictorSettings",
    "ProjectionsSettings",
    "RiskSettings",
    "Settings",
    "SettingsError",
    "SettingsIssue",
    "StrategySettings",
    "TelegramSettings",
    "TradingSettings",
    "load_settings",
    "with_params",
]
