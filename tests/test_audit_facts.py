"""`verify` recomputes each event's own facts: a run's decision digest, a fill's journal amounts and fee, and the
projections' tracking against the head; each forged on a real backtest store with its chain recomputed."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tradeledger.adapters.cli import main
from tradeledger.domain.decisions import digest_of
from tests.forging import ETH, backtest_store, copy_of, forge, replaced, rows, sha256, url  # noqa: F401 - fixture

MONEY = Decimal("1e-12")


def verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main(["--database", url(path), "verify", "--json"])
    return code, json.loads(capsys.readouterr().out)["findings"]


def of_check(findings: list[dict], check: str) -> list[dict]:
    return [f for f in findings if f["check"] == check]


def test_a_backtest_records_its_decision_digest_and_input_file_and_verifies(backtest_store: Path, capsys) -> None:
    (position, started), = rows(backtest_store, "AgentRun.Started")
    assert started["decision_digest"] == digest_of(started["decision_config"])
    assert started["data_file"] == ETH.name and started["data_sha256"] == sha256(ETH)
    code, findings = verify(backtest_store, capsys)
    assert code == 0 and findings == []


def test_a_forged_decision_setting_breaks_the_decision_digest(backtest_store: Path, tmp_path: Path, capsys) -> None:
    store = copy_of(backtest_store, tmp_path)
    (position, started), = rows(store, "AgentRun.Started")
    recorded = started["decision_config"]["risk.max_drawdown_percent"]
    forge(store, position, replaced(f'"risk.max_drawdown_percent":"{recorded}"', '"risk.max_drawdown_percent":"90"'))
    code, findings = verify(store, capsys)
    facts = of_check(findings, "facts")
    assert code == 1 and [f["position"] for f in facts] == [position]
    assert "decision_digest" in facts[0]["message"] and "not the SHA-256" in facts[0]["message"]
    assert not of_check(findings, "hash"), "the forger recomputed the chain: only the facts give it away"


def test_a_forged_fill_price_is_named_with_its_journal_line(backtest_store: Path, tmp_path: Path, capsys) -> None:
    store = copy_of(backtest_store, tmp_path)
    position, fill = next((p, f) for p, f in rows(store, "Account.OrderFilled") if f["side"] == "buy")
    forged = Decimal(fill["price"]) * 2
    forge(store, position, replaced(f'"price":"{fill["price"]}"', f'"price":"{forged}"'))
    code, findings = verify(store, capsys)
    facts = of_check(findings, "facts")
    assert code == 1 and facts and {f["position"] for f in facts} == {position}
    value = (forged * Decimal(fill["quantity"])).quantize(MONEY)
    assert any("journal line position:ETH/BTC" in f["message"] and f"price × quantity = {value}" in f["message"]
               for f in facts), facts


def test_a_lower_fee_booked_consistently_is_caught_by_the_recorded_fee_rate(backtest_store: Path, tmp_path: Path,
                                                                            capsys) -> None:
    """The fee, the fees line and the cash line forged together: the journal balances and the ledger holds, but the
    fee is not price × quantity × the fee rate the fill recorded."""
    store = copy_of(backtest_store, tmp_path)
    position, fill = next((p, f) for p, f in rows(store, "Account.OrderFilled") if f["side"] == "buy")
    fee = Decimal(fill["fee"])
    lower = (fee / 2).quantize(MONEY)
    cash = next(line["amount"] for line in fill["journal"] if line["account"].startswith("cash:"))

    def edit(payload: bytes) -> bytes:
        for old, new in ((f'"fee":"{fill["fee"]}"', f'"fee":"{lower}"'),
                         (f'"amount":"{fee}"', f'"amount":"{lower}"'),
                         (f'"amount":"{cash}"', f'"amount":"{Decimal(cash) + fee - lower}"')):
            payload = replaced(old, new)(payload)
        return payload

    forge(store, position, edit)
    code, findings = verify(store, capsys)
    facts = of_check(findings, "facts")
    assert code == 1 and [f["position"] for f in facts] == [position]
    assert "recorded fee_rate" in facts[0]["message"] and not of_check(findings, "ledger")


def test_projections_tracked_beyond_a_truncated_head_are_named(backtest_store: Path, tmp_path: Path, capsys) -> None:
    store = copy_of(backtest_store, tmp_path)
    assert main(["--database", url(store), "rebuild"]) == 0
    capsys.readouterr()
    with sqlite3.connect(store) as db:
        head = db.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
        db.execute("DELETE FROM stored_events WHERE rowid > ?", (head - 3,))
    code, findings = verify(store, capsys)
    tracking = of_check(findings, "tracking")
    assert code == 1 and tracking and all(f["position"] == head for f in tracking)
    assert all(f"beyond the log's head {head - 3}" in f["message"] for f in tracking)
