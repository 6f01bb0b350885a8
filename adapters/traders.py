"""The trader factory: a `Trader` built from the settings, with this package's models, calendars and broker.

The composition root hands it to the trading session and to `reproduce`, so
the services never build their own collaborators.
"""

from __future__ import annotations

from functools import cache

import msgspec

from tradeledger.domain.broker import PaperBroker
from tradeledger.adapters.calendars import sessions_for
from tradeledger.adapters.models import build_predictor
from tradeledger.adapters.strategies import Strategy, StrategyPredictor
from tradeledger.domain.exits import ExitRules
from tradeledger.domain.features import FeatureEngine
from tradeledger.domain.history import HistoryEngine
from tradeledger.domain.marketrules import OrderRules, RulesFor
from tradeledger.domain.risk import RiskLimits
from tradeledger.domain.orders import OrderPolicy
from tradeledger.domain.trader import MarketModel, Sizing, Trader
from tradeledger.domain.values import OrderType
from tradeledger.settings import MarketSettings, Settings, TradingSettings


def build_trader(settings: Settings, strategy: Strategy | None = None) -> Trader:
    """With `strategy` (loaded by `adapters.strategies`), each market's model asks it instead of the predictor."""
    p, t, r = settings.predictor, settings.trading, settings.risk
    sessions = sessions_for(settings.market.calendar)
    rules = order_rules(settings.market)

    def market_model() -> MarketModel:
        if strategy is not None:
            engine = HistoryEngine(strategy.lookback, fast=p.fast, slow=p.slow, sessions=sessions)
            return MarketModel(engine, StrategyPredictor(strategy, engine.window, timeout=settings.strategy.timeout))
        predictor = build_predictor(p.name, seed=p.seed, fast=p.fast, slow=p.slow)
        return MarketModel(FeatureEngine(fast=p.fast, slow=p.slow, sessions=sessions), predictor)

    return Trader(
        model_factory=market_model,
        limits=RiskLimits(max_daily_loss_percent=r.max_daily_loss_percent,
                          max_drawdown_percent=r.max_drawdown_percent,
                          max_consecutive_losses=r.max_consecutive_losses, cooldown_candles=r.cooldown_candles,
                          exit_on_drawdown=r.exit_on_drawdown),
        sizing=Sizing(position_size=t.position_size, fee_rate=t.fee_rate, slippage_bps=t.slippage_bps,
                      stake_amount=t.stake_amount, max_open_trades=t.max_open_trades),
        broker=PaperBroker(fee_rate=t.fee_rate, slippage_bps=t.slippage_bps, rules=rules),
        rules=rules,
        exit_rules=ExitRules(**msgspec.structs.asdict(settings.exits)),
        orders=order_policy(t),
    )


def order_policy(t: TradingSettings) -> OrderPolicy:
    """Market or limit orders from `trading.*`; a setting left unset keeps the policy's default."""
    given = {"entry_order": t.entry_order and OrderType(t.entry_order),
             "exit_order": t.exit_order and OrderType(t.exit_order),
             "limit_offset_bps": t.limit_offset_bps, "timeout_candles": t.order_timeout_candles}
    return OrderPolicy(**{name: value for name, value in given.items() if value is not None})


RULE_NAMES = ("amount_step", "price_step", "min_amount", "min_notional")


def order_rules(market: MarketSettings) -> RulesFor:
    """Each symbol's trading rules from `market.*`: a value set for every symbol, or the symbol's own."""

    @cache
    def of(symbol: str) -> OrderRules:
        values = {name: getattr(market, name) for name in RULE_NAMES}
        return OrderRules(**{name: value.get(symbol) if isinstance(value, dict) else value
                             for name, value in values.items()})

    return of
