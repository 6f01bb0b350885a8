"""Paper fills that respect the market: steps, minimums and the fee, unit and end to end in a backtest."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.exchange import MarketRules
from tradeledger.adapters.markets import with_exchange_rules
from tradeledger.domain.marketrules import MIN_AMOUNT, MIN_NOTIONAL, OrderRules
from tradeledger.domain.values import Side
from tradeledger.settings import load_settings

XRP_ETH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "candles" / "XRP_ETH-5m.json"
RULES = OrderRules(amount_step=Decimal("0.1"), price_step=Decimal("0.00001"), min_amount=Decimal("1"),
                   min_notional=Decimal("0.01"))


def test_quantities_round_down_to_the_step_and_prices_against_the_trader() -> None:
    assert RULES.amount(Decimal("12.3456")) == Decimal("12.3")
    assert RULES.price(Decimal("0.001412345"), Side.BUY) == Decimal("0.00142")
    assert RULES.price(Decimal("0.001412345"), Side.SELL) == Decimal("0.00141")
    assert RULES.price(Decimal("0.00141"), Side.BUY) == Decimal("0.00141")  # already on a step
    assert OrderRules().amount(Decimal("1.23456789")) == Decimal("1.23456789")  # no rules: unchanged


def test_orders_below_a_minimum_are_refused_naming_the_rule() -> None:
    assert RULES.refusal("XRP/ETH", Decimal("0.9"), Decimal("1"))[0] == MIN_AMOUNT
    assert RULES.refusal("XRP/ETH", Decimal("5"), Decimal("0.0014"))[0] == MIN_NOTIONAL
    assert RULES.refusal("XRP/ETH", Decimal("0"), Decimal("1"))[0] == "amount_step"
    assert RULES.refusal("XRP/ETH", Decimal("10"), Decimal("0.0014")) is None
    assert OrderRules().refusal("XRP/ETH", Decimal("0.00000001"), Decimal("1E-8")) is None


def test_the_exchanges_rules_fill_the_unset_market_settings_and_the_fee() -> None:
    settings = load_settings(environ={"TRADELEDGER_MARKET__MIN_AMOUNT": "5"})
    rules = {symbol: MarketRules(symbol=symbol, base=symbol[:3], quote="BTC", price_step=Decimal("0.000001"),
                                 amount_step=step, min_amount=Decimal("0.01"), min_notional=None, taker_fee=fee)
             for symbol, step, fee in (("ETH/BTC", Decimal("0.001"), Decimal("0.001")),
                                       ("LTC/BTC", Decimal("0.01"), Decimal("0.00075")))}
    applied = with_exchange_rules(settings, rules)
    assert applied.market.amount_step == {"ETH/BTC": Decimal("0.001"), "LTC/BTC": Decimal("0.01")}
    assert applied.market.min_amount == Decimal("5")  # set by the user: theirs
    assert applied.market.min_notional is None  # the exchange states none
    assert applied.trading.fee_rate == Decimal("0.001")
    kept = load_settings(environ={"TRADELEDGER_EXCHANGE__USE_MARKET_FEE": "false",
                                  "TRADELEDGER_TRADING__FEE_RATE": "0"})
    assert with_exchange_rules(kept, rules).trading.fee_rate == Decimal("0")


def backtest(tmp_path: Path, rules: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, list[dict]]]:
    settings = tmp_path / "settings.toml"
    settings.write_text(f"[trading]\nposition_size = \"1\"\n[market]\n{rules}\n")
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert main(["--database", url, "--settings", str(settings), "backtest", "--data", str(XRP_ETH),
                 "--predictor", "sma_cross"]) == 0
    capsys.readouterr()
    assert main(["--database", url, "events", "--limit", "10000", "--json"]) == 0
    events: dict[str, list[dict]] = {}
    for record in json.loads(capsys.readouterr().out):
        events.setdefault(record["type"], []).append(record["data"])
    return url, events


def test_a_backtest_below_the_minimum_notional_rejects_every_entry_with_that_rule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, events = backtest(tmp_path, 'min_notional = "1000"', capsys)
    rejected = events["OrderRejected"]
    assert rejected and {r["rule"] for r in rejected} == {MIN_NOTIONAL}
    assert "OrderPlaced" not in events and "minimum notional 1000" in rejected[0]["reason"]


def test_a_backtest_with_steps_places_and_fills_on_them_and_reproduces(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, events = backtest(tmp_path, 'amount_step = { "XRP/ETH" = "0.1" }\nprice_step = "0.00001"', capsys)
    placed, filled = events["OrderPlaced"], events["OrderFilled"]
    assert placed and filled
    assert all(Decimal(order["quantity"]) % Decimal("0.1") == 0 for order in placed)
    assert all(Decimal(fill["price"]) % Decimal("0.00001") == 0 for fill in filled)
    started = events["Started"][0]["decision_config"]
    assert (started["market.amount_step"], started["market.price_step"]) == ('{"XRP/ETH": "0.1"}', "0.00001")
    assert main(["--database", url, "reproduce"]) == 0  # the rules were recorded: no network, same decisions
    assert "reproduced exactly" in capsys.readouterr().out
