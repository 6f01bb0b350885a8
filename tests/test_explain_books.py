"""`explain`, `journal` and `trial-balance` on a real backtest, checked against the documented formulas and the
events themselves, never against the project's own arithmetic."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CANDLES
from tradeledger.adapters.cli import main

DATA = CANDLES / "XRP_ETH-5m.json"  # 706 real candles; the ensemble trades ~70 round trips on them
PRICE, MONEY, QUANTITY = Decimal("1e-10"), Decimal("1e-12"), Decimal("1e-8")
# A drawdown limit the run breaches, so some orders are the drawdown rule's exits (no sizing, a failed check).
SETTINGS = "[risk]\nmax_drawdown_percent = 3\n"


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = main(["--database", url, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_json(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> Any:
    code, out, err = run(capsys, url, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("books")
    settings = folder / "settings.toml"
    settings.write_text(SETTINGS)
    url = f"sqlite:///{folder / 'ledger.sqlite'}"
    assert main(["--database", url, "--settings", str(settings), "backtest", "--data", str(DATA),
                 "--predictor", "ensemble"]) == 0
    return url, settings


@pytest.fixture(scope="module")
def log(store: tuple[str, Path]) -> list[dict[str, Any]]:
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--database", store[0], "events", "--limit", "10000", "--json"]) == 0
    records: list[dict[str, Any]] = json.loads(out.getvalue())
    return records


def d(value: str) -> Decimal:
    return Decimal(value)


# -- explain ------------------------------------------------------------------------


def test_explain_shows_every_item_and_its_numbers_recompute_from_the_documented_formulas(
        store: tuple[str, Path], log: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    url = store[0]
    by_position = {r["position"]: r for r in log}
    filled = {r["data"]["order_id"] for r in log if r["type"] == "OrderFilled"}
    placed = [r for r in log if r["type"] == "OrderPlaced" and r["data"]["order_id"] in filled]
    exits = [r for r in placed if r["data"]["reason"] == "max_drawdown_percent"]
    assert exits, "the tightened drawdown limit closes a position"
    chosen = [*random.Random(12).sample(placed, 6), exits[0]]
    for record in chosen:
        order_id = record["data"]["order_id"]
        e = as_json(capsys, url, "explain", order_id)
        assert e["order"]["position"] == record["position"]
        check_candle_and_signal(e, by_position)
        check_checks(e, record)
        check_quantity(e)
        check_fill(e, by_position)
        check_round_trip(e)
        # The same explanation from the position of its fill and of its signal.
        for position in (e["fill"]["position"], e["signal"]["position"]):
            assert as_json(capsys, url, "explain", "--position", str(position)) == e
        code, text, _ = run(capsys, url, "explain", order_id)
        assert code == 0 and "round trip" in text and "journal:" in text and "quantity = " in text


def check_candle_and_signal(e: dict[str, Any], by_position: dict[int, dict[str, Any]]) -> None:
    candle, signal = e["candle"], e["signal"]
    stored = by_position[candle["position"]]
    assert stored["type"] == "CandleClosed"
    assert {k: stored["data"][k] for k in ("open", "high", "low", "close", "volume")} == \
        {k: candle[k] for k in ("open", "high", "low", "close", "volume")}
    recorded = by_position[signal["position"]]["data"]
    assert recorded["candle_time"] == candle["open_time"]
    assert signal["features"] == recorded["feature_values"] and len(signal["features"]) > 5
    assert [m["name"] for m in signal["members"]] == ["logistic", "hoeffding_tree", "sma_cross"]
    assert (signal["model_name"], signal["model_version"]) == (recorded["model_name"], recorded["model_version"])


def check_checks(e: dict[str, Any], placed: dict[str, Any]) -> None:
    checks = {c["rule"]: c for c in e["checks"]}
    assert set(checks) == {"max_drawdown_percent", "max_daily_loss_percent", "max_consecutive_losses"}
    assert checks["max_drawdown_percent"]["limit"] == "3"
    for c in checks.values():
        assert c["passed"] == (d(c["value"]) < d(c["limit"]))
    if placed["data"]["reason"] == "max_drawdown_percent":
        assert not checks["max_drawdown_percent"]["passed"]
    elif placed["data"]["side"] == "buy":
        assert all(c["passed"] for c in checks.values())


def check_quantity(e: dict[str, Any]) -> None:
    order, sizing = e["order"], e["sizing"]
    if order["side"] == "sell":  # an exit sells the whole position: what the trip's buys bought
        assert sizing["inputs"] is None
        buys = [f for f in e["round_trip"]["fills"] if f["side"] == "buy" and f["position"] < e["fill"]["position"]]
        assert d(order["quantity"]) == sum(d(f["quantity"]) for f in buys)
        return
    i = {k: d(v) for k, v in sizing["inputs"].items() if v is not None}
    budget = min(i["equity"] * i["position_size"], i["cash"])
    unit_cost = i["price"] * (1 + i["fee_rate"]) * (1 + i["slippage_bps"] / 10_000)
    quantity = (budget / unit_cost).quantize(QUANTITY, rounding=ROUND_DOWN)
    if "amount_step" in i:  # a market with exchange rules (none in a file backtest)
        quantity = (quantity / i["amount_step"]).to_integral_value(rounding=ROUND_DOWN) * i["amount_step"]
    assert quantity == d(order["quantity"]) == d(sizing["quantity"])
    assert i["price"] == d(e["candle"]["close"]), "sized at the signal candle's close"


def check_fill(e: dict[str, Any], by_position: dict[int, dict[str, Any]]) -> None:
    fill, order = e["fill"], e["order"]
    basis = fill["basis"]
    fill_candle = by_position[fill["candle_position"]]["data"]
    assert fill_candle["open"] == basis["open"] and fill_candle["open_time"] == fill["filled_at"]
    assert datetime.fromisoformat(fill["filled_at"]) > datetime.fromisoformat(e["candle"]["open_time"])
    direction = 1 if order["side"] == "buy" else -1
    price = (d(basis["open"]) * (1 + direction * d(basis["slippage_bps"]) / 10_000)).quantize(PRICE)
    if basis["price_step"] is not None:  # against the trader: a buy rounds up, a sell down
        step = d(basis["price_step"])
        price = (price / step).to_integral_value(rounding=ROUND_CEILING if direction == 1 else ROUND_FLOOR) * step
    quantity = d(fill["quantity"])
    fee = (price * quantity * d(basis["fee_rate"])).quantize(MONEY)
    assert (price, fee) == (d(fill["price"]), d(fill["fee"]))
    assert quantity <= d(order["quantity"]) if order["side"] == "buy" else quantity == d(order["quantity"])
    value = (price * quantity).quantize(MONEY)
    lines = {p["account"]: d(p["debit"]) - d(p["credit"]) for p in fill["journal"]}
    symbol, quote = order["symbol"], order["symbol"].split("/")[1]
    assert lines["expense:fees"] == fee
    if order["side"] == "buy":
        assert lines == {f"position:{symbol}": value, "expense:fees": fee, f"cash:{quote}": -(value + fee)}
    else:
        gross = d(fill["gross_pnl"])
        assert lines[f"cash:{quote}"] == value - fee
        assert lines[f"position:{symbol}"] == -(value - gross), "the position leaves at its cost"
        assert lines.get("income:trading", Decimal(0)) == -gross
    assert sum(lines.values()) == 0


def check_round_trip(e: dict[str, Any]) -> None:
    trip = e["round_trip"]
    assert e["fill"]["position"] in [f["position"] for f in trip["fills"]]
    fees = sum(d(f["fee"]) for f in trip["fills"])
    assert d(trip["fees"]) == fees
    assert d(trip["net_pnl"]) == d(trip["gross_pnl"]) - fees
    if trip["closed"]:
        bought = sum((d(f["price"]) * d(f["quantity"])).quantize(MONEY) for f in trip["fills"] if f["side"] == "buy")
        sold = sum((d(f["price"]) * d(f["quantity"])).quantize(MONEY) for f in trip["fills"] if f["side"] == "sell")
        assert d(trip["gross_pnl"]) == sold - bought


def test_explain_of_an_unknown_order_or_position_is_one_line_and_exit_2(
        store: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url = store[0]
    for args in (["explain", "00000000-0000-0000-0000-000000000000"], ["explain", "--position", "1"],
                 ["explain", "--position", "999999"], ["explain", "not-a-uuid"], ["explain"]):
        code, _, err = run(capsys, url, *args)
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("tradeledger explain:"), err


# -- the books ----------------------------------------------------------------------


def folded(lines: Sequence[dict[str, Any]], until: int) -> dict[str, Decimal]:
    balances: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line["position"] <= until:
            balances[line["account"]] += d(line["debit"]) - d(line["credit"])
    return dict(balances)


def test_journal_lines_are_the_events_journals(store: tuple[str, Path], log: list[dict[str, Any]],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = store[0]
    lines = as_json(capsys, url, "journal")
    expected = [(r["position"], j["account"], d(j["amount"])) for r in log if r["type"] in ("Opened", "OrderFilled")
                and "journal" in r["data"] for j in r["data"]["journal"]]
    assert [(x["position"], x["account"], d(x["debit"]) - d(x["credit"])) for x in lines] == expected
    assert all((d(x["debit"]) == 0) != (d(x["credit"]) == 0) for x in lines)
    fees = as_json(capsys, url, "journal", "--account", "expense:fees")
    assert fees == [x for x in lines if x["account"] == "expense:fees"] and fees
    middle = lines[len(lines) // 2]["at"]
    assert as_json(capsys, url, "journal", "--from", middle) == [x for x in lines if x["at"] >= middle]
    assert as_json(capsys, url, "journal", "--to", middle) == [x for x in lines if x["at"] <= middle]
    code, text, _ = run(capsys, url, "journal", "--csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(int(r["position"]), r["account"], d(r["debit"]), d(r["credit"])) for r in rows] == \
        [(x["position"], x["account"], d(x["debit"]), d(x["credit"])) for x in lines]


def test_trial_balance_at_positions_and_times_balances_and_equals_the_fold_of_the_journal(
        store: tuple[str, Path], log: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    url = store[0]
    lines = as_json(capsys, url, "journal")
    head = log[-1]["position"]
    rng = random.Random(7)
    for position in [1, head, *rng.sample(range(2, head), 5)]:
        tb = as_json(capsys, url, "trial-balance", "--position", str(position))
        check_balanced(tb, folded(lines, position), position)
    ledger = [r for r in log if r["type"] not in ("Started", "Heartbeat", "Stopped")]
    for record in rng.sample(ledger, 4):
        moment = record["at"]
        # The documented cut: the last account or market event about a market time <= T.
        cut = max(r["position"] for r in ledger if r["at"] <= moment)
        tb = as_json(capsys, url, "trial-balance", "--as-of", moment)
        assert tb["position"] == cut
        check_balanced(tb, folded(lines, cut), cut)
    code, text, _ = run(capsys, url, "trial-balance")
    assert code == 0 and text.splitlines()[-1].strip() == "total 0: balanced"
    code, _, err = run(capsys, url, "trial-balance", "--position", "3", "--as-of", moment)
    assert code == 2 and len(err.splitlines()) == 1


def check_balanced(tb: dict[str, Any], expected: dict[str, Decimal], position: int) -> None:
    assert tb["position"] == position and tb["balanced"] and d(tb["total"]) == 0
    assert {b["account"]: d(b["balance"]) for b in tb["balances"]} == expected


# -- PnL named for what it is -------------------------------------------------------------------------


def test_backtest_and_replay_show_gross_fees_and_net_side_by_side(
        store: tuple[str, Path], log: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    url, settings = store
    # The same store continued: nothing new is traded, the summary is read again.
    summary = as_json(capsys, url, "--settings", str(settings), "backtest", "--data", str(DATA),
                      "--predictor", "ensemble")
    gross, fees, net = (d(summary[k]) for k in ("gross_pnl", "fees", "net_pnl"))
    assert net == gross - fees and fees > 0
    trades = summary["closed_trades"]
    assert sum(d(t["pnl"]) for t in trades) == gross - sum(d(t["fees"]) for t in trades), "trades are net"
    code, text, _ = run(capsys, url, "--settings", str(settings), "backtest", "--data", str(DATA),
                        "--predictor", "ensemble")
    shown = {line[:14].strip(): d(line[14:].split()[0]) for line in text.splitlines()
             if line.startswith(("gross PnL", "fees", "net PnL"))}
    assert shown == {"gross PnL": gross, "fees": fees, "net PnL": net}
    code, text, _ = run(capsys, url, "replay", "--position", str(log[-1]["position"]))
    account = re.search(r"gross PnL (\S+)  fees (\S+)  net PnL (\S+)", text)
    assert code == 0 and account is not None and tuple(map(d, account.groups())) == (gross, fees, net)


def test_the_exports_journal_lines_are_the_journal_and_fold_to_the_trial_balance(
        store: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = store[0]
    code, _, err = run(capsys, url, "export", "--out", str(tmp_path / "export"), "--format", "csv")
    assert code == 0, err
    with (tmp_path / "export" / "journal.csv").open() as file:
        exported = list(csv.DictReader(file))
    lines = as_json(capsys, url, "journal")
    assert [(int(r["position"]), r["ledger_account"], d(r["debit"]), d(r["credit"])) for r in exported] == \
        [(x["position"], x["account"], d(x["debit"]), d(x["credit"])) for x in lines]
    tb = as_json(capsys, url, "trial-balance")
    as_lines = [{"position": int(r["position"]), "account": r["ledger_account"], "debit": r["debit"],
                 "credit": r["credit"]} for r in exported]
    check_balanced(tb, folded(as_lines, tb["position"]), tb["position"])
