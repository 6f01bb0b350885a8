"""`tradeledger verify` on a real SQLite file: passes untouched, names the event after each kind of tampering."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tradeledger.adapters.cli import main
from tradeledger.adapters.database import upgrade
from tradeledger.adapters.eventstore import chain_digest, open_store, split_state
from tests.builders import one_of_each


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[str, Path, list[tuple[int, str, int, bytes]]]:
    """A store holding every event type; returns its URL, file and rows (rowid, stream, version, state)."""
    path = tmp_path / "ledger.sqlite"
    url = f"sqlite:///{path}"
    upgrade(url)
    store = open_store(url)
    store.save(*one_of_each())
    store.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT rowid, originator_id, originator_version, state FROM stored_events "
                          "ORDER BY rowid").fetchall()
    return url, path, rows


def verify(url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    code = main(["--database", url, "verify", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def first_finding(report: dict) -> dict:
    assert report["ok"] is False and report["findings"]
    return report["findings"][0]


def account_rows(rows: list[tuple[int, str, int, bytes]]) -> list[tuple[int, str, int, bytes]]:
    account_stream = rows[0][1]
    return [r for r in rows if r[1] == account_stream]


def test_an_untouched_store_verifies(ledger, capsys) -> None:
    url, _, rows = ledger
    code, report = verify(url, capsys)
    assert code == 0 and report["ok"] and report["events"] == len(rows)


def test_an_edited_event_is_named(ledger, capsys) -> None:
    url, path, rows = ledger
    rowid, stream, version, state = account_rows(rows)[2]
    digest, payload = split_state(state)
    edited = payload.replace(b'"price":"0.05"', b'"price":"0.04"')
    assert edited != payload
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (digest + edited, rowid))
    code, report = verify(url, capsys)
    finding = first_finding(report)
    assert code == 1
    assert (finding["check"], finding["stream"].replace("-", ""), finding["version"], finding["position"]) == \
        ("hash", stream, version, rowid)


def test_an_edit_with_a_recomputed_digest_breaks_the_next_link(ledger, capsys) -> None:
    url, path, rows = ledger
    mine, following = account_rows(rows)[2], account_rows(rows)[3]
    rowid, stream, version, state = mine
    previous = split_state(account_rows(rows)[1][3])[0]
    payload = split_state(state)[1].replace(b'"fee":"0.000100000000"', b'"fee":"0"')
    from uuid import UUID

    topic = "tradeledger.domain.account:Account.OrderFilled"
    forged = chain_digest(previous, UUID(stream), version, topic, payload)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (forged + payload, rowid))
    code, report = verify(url, capsys)
    hashes = [f for f in report["findings"] if f["check"] == "hash"]
    assert code == 1 and hashes[0]["version"] == following[2] and hashes[0]["position"] == following[0]


def test_a_deleted_event_is_named(ledger, capsys) -> None:
    url, path, rows = ledger
    removed, after = account_rows(rows)[3], account_rows(rows)[4]
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM stored_events WHERE rowid=?", (removed[0],))
    code, report = verify(url, capsys)
    finding = first_finding(report)
    assert code == 1 and finding["check"] == "order"
    assert (finding["version"], finding["position"]) == (after[2], after[0])
    assert f"expected version {removed[2]}" in finding["message"]


def test_reordered_events_are_named(ledger, capsys) -> None:
    url, path, rows = ledger
    first, second = account_rows(rows)[1], account_rows(rows)[2]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET rowid=-1 WHERE rowid=?", (first[0],))
        db.execute("UPDATE stored_events SET rowid=? WHERE rowid=?", (first[0], second[0]))
        db.execute("UPDATE stored_events SET rowid=? WHERE rowid=-1", (second[0],))
    code, report = verify(url, capsys)
    finding = first_finding(report)
    assert code == 1 and finding["check"] == "order"
    assert (finding["version"], finding["position"]) == (second[2], first[0])


def test_swapped_versions_are_named(ledger, capsys) -> None:
    url, path, rows = ledger
    first, second = account_rows(rows)[1], account_rows(rows)[2]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET originator_version=-1 WHERE rowid=?", (first[0],))
        db.execute("UPDATE stored_events SET originator_version=? WHERE rowid=?", (first[2], second[0]))
        db.execute("UPDATE stored_events SET originator_version=? WHERE rowid=?", (second[2], first[0]))
    code, report = verify(url, capsys)
    finding = first_finding(report)
    assert code == 1 and finding["check"] in ("order", "hash") and finding["position"] == first[0]


def test_a_truncated_tail_is_found_with_a_signed_checkpoint(ledger, capsys, tmp_path: Path, monkeypatch) -> None:
    url, path, rows = ledger
    key, checkpoint = tmp_path / "notary.pem", tmp_path / "checkpoint.json"
    assert main(["keys", "new", "--out", str(key)]) == 0
    monkeypatch.setenv("TRADELEDGER_AUDIT__SIGNING_KEY", str(key))
    assert main(["--database", url, "seal", "--out", str(checkpoint)]) == 0
    capsys.readouterr()
    last = account_rows(rows)[-1]
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM stored_events WHERE rowid=?", (last[0],))
    code, report = verify(url, capsys)
    assert code == 0, "without a checkpoint a removed tail is indistinguishable from a shorter history"
    code, report = verify(url, capsys, "--checkpoint", str(checkpoint))
    finding = first_finding(report)
    assert code == 1 and finding["check"] == "checkpoint" and finding["position"] == last[0]


def test_a_ledger_that_does_not_balance_is_named(ledger, capsys) -> None:
    url, path, rows = ledger
    rowid, stream, version, state = account_rows(rows)[2]
    payload = split_state(state)[1].replace(b'"amount":"-0.100100000000"', b'"amount":"-0.100000000000"')
    previous = split_state(account_rows(rows)[1][3])[0]
    from uuid import UUID

    digest = chain_digest(previous, UUID(stream), version, "tradeledger.domain.account:Account.OrderFilled", payload)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (digest + payload, rowid))
    code, report = verify(url, capsys)
    ledger_findings = [f for f in report["findings"] if f["check"] == "ledger"]
    assert code == 1 and ledger_findings[0]["position"] == rowid
    assert "do not balance" in ledger_findings[0]["message"]


def test_the_text_report_names_the_first_bad_event(ledger, capsys) -> None:
    url, path, rows = ledger
    removed = account_rows(rows)[3]
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM stored_events WHERE rowid=?", (removed[0],))
    assert main(["--database", url, "verify"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED") and f"version {removed[2] + 1} at position" in out
