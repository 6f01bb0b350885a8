"""Decision settings: one typed struct, recorded in the dotted-text shape stores have always had."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from tradeledger.domain.decisions import DecisionSettings
from tradeledger.settings import load_settings

# The shape AgentRun.Started records (see tests/fixtures/store-0.1.0.sqlite), as runs before the last two settings did.
RECORDED_BY_0_1_0 = {
    "predictor.name": "sma_cross", "predictor.seed": "42", "predictor.fast": "5", "predictor.slow": "20",
    "trading.fee_rate": "0.0010", "trading.slippage_bps": "5", "trading.position_size": "0.1",
    "risk.max_daily_loss_percent": "5", "risk.max_drawdown_percent": "20", "risk.max_consecutive_losses": "5",
    "risk.cooldown_candles": "12",
}


def test_a_config_recorded_before_settings_were_added_decides_with_their_defaults() -> None:
    recorded = DecisionSettings.from_recorded(RECORDED_BY_0_1_0)
    assert (recorded.exit_on_drawdown, recorded.calendar) == (True, "24/7")
    assert recorded.fee_rate == Decimal("0.0010") and recorded.predictor_seed == 42
    assert recorded.recorded() == {**RECORDED_BY_0_1_0, "risk.exit_on_drawdown": "True", "market.calendar": "24/7"}


def test_the_settings_record_as_dotted_names_to_text_and_read_back_the_same() -> None:
    decisions = DecisionSettings.of(msgspec.to_builtins(load_settings(environ={})))
    recorded = decisions.recorded()
    unset_rules = ["market.amount_step", "market.price_step", "market.min_amount", "market.min_notional",
                   "strategy.digest", "strategy.name", "strategy.version", "strategy.params",  # no strategy
                   "trading.max_open_trades", "trading.stake_amount",  # no portfolio limits
                   *(n for n in DecisionSettings.names() if n.startswith("exits.")),  # no exits: market orders
                   "trading.entry_order", "trading.exit_order", "trading.limit_offset_bps", "trading.order_timeout_candles"]
    assert list(recorded) == [name for name in DecisionSettings.names() if name not in unset_rules]
    assert all(isinstance(v, str) for v in recorded.values())
    assert DecisionSettings.from_recorded(recorded) == decisions


def test_a_change_is_named_by_setting_and_compared_as_recorded_text() -> None:
    recorded = DecisionSettings.from_recorded(RECORDED_BY_0_1_0)
    now = msgspec.structs.replace(recorded, fee_rate=Decimal("0.001"), calendar="XNYS")
    assert now.changes_from(recorded) == {"trading.fee_rate": ("0.0010", "0.001"), "market.calendar": ("24/7", "XNYS")}
    assert recorded.changes_from(recorded) == {}


def test_applied_to_the_settings_the_recorded_decisions_win_and_nothing_else_changes() -> None:
    sections = {"trading": {"account": "main", "fee_rate": "0.002"}, "risk": {}, "predictor": {}, "market": {}}
    applied = DecisionSettings.from_recorded(RECORDED_BY_0_1_0).applied_to(sections)
    assert applied["trading"] == {"account": "main", "fee_rate": "0.0010", "slippage_bps": "5", "position_size": "0.1",
                                  "max_open_trades": None, "stake_amount": None, "entry_order": None,
                                  "exit_order": None, "limit_offset_bps": None, "order_timeout_candles": None}
    no_rules = {"amount_step": None, "price_step": None, "min_amount": None, "min_notional": None}
    assert applied["market"] == {"calendar": "24/7", **no_rules} and sections["trading"]["fee_rate"] == "0.002"


def test_a_recorded_value_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="predictor.seed"):
        DecisionSettings.from_recorded({**RECORDED_BY_0_1_0, "predictor.seed": "forty-two"})


def test_market_rules_record_as_text_for_every_symbol_or_as_json_by_symbol_and_read_back() -> None:
    recorded = DecisionSettings.from_recorded(RECORDED_BY_0_1_0)
    ruled = msgspec.structs.replace(recorded, amount_step=Decimal("0.001"),
                                    min_notional={"LTC/BTC": Decimal("0.0002"), "ETH/BTC": Decimal("0.0001")})
    text = ruled.recorded()
    assert text["market.amount_step"] == "0.001" and "market.price_step" not in text
    assert text["market.min_notional"] == '{"ETH/BTC": "0.0001", "LTC/BTC": "0.0002"}'
    assert DecisionSettings.from_recorded(text) == ruled
    assert ruled.changes_from(recorded) == {"market.amount_step": ("unset", "0.001"),
                                            "market.min_notional": ("unset", text["market.min_notional"])}
