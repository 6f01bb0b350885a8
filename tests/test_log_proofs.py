"""The verifiable log end to end: every attack of issue 11 is found by `verify --checkpoint` and by the outsider's
scripts/verify_log.py, naming the position, on SQLite and PostgreSQL; forged checkpoints are refused.

One real backtest store per backend is built once (300 ETH/BTC candles, a signed checkpoint); each attack runs
on a copy (SQLite: a file copy; PostgreSQL: a database made from it as a template).
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
import sqlalchemy as sa

from scripts import verify_log
from tradeledger.adapters.checkpoints import new_key_pair
from tradeledger.adapters.cli import main
from tradeledger.adapters.eventstore import chain_digest, split_state
from tradeledger.adapters.evidence import write_evidence
from tradeledger.adapters.services.notary import load_tree
from tradeledger.settings import load_settings
from tests.agents import command
from tests.backtested import backtest_store
from tests.composing import composed
from tests.conftest import POSTGRES_ADMIN, require_postgres

CANDLES = 300


class Built(NamedTuple):
    copy: Callable[[], str]  # a fresh copy of the sealed store: its URL
    key: Path
    checkpoint: Path
    size: int


def settings_for(url: str, key: Path) -> Any:
    return load_settings(overrides={"database.url": url, "audit.signing_key": str(key)}, environ={})


def seal(url: str, key: Path, out: Path) -> int:
    with composed(settings_for(url, key)) as container:
        checkpoint = container.notary.checkpoint()
    out.write_text(json.dumps({f: getattr(checkpoint, f) for f in checkpoint.__struct_fields__}))
    return checkpoint.tree_size


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp(f"proofs-{request.param}")
    key = base / "notary.pem"
    new_key_pair(key)
    if request.param == "sqlite":
        url = f"sqlite:///{base / 'base.sqlite'}"
        backtest_store(url, CANDLES)
        size = seal(url, key, base / "checkpoint.json")

        def copy() -> str:
            target = base / f"{uuid.uuid4().hex}.sqlite"
            shutil.copyfile(base / "base.sqlite", target)
            return f"sqlite:///{target}"
        yield Built(copy, key, base / "checkpoint.json", size)
        return
    require_postgres()
    names = [f"tl_{uuid.uuid4().hex[:12]}"]
    root = POSTGRES_ADMIN.rsplit("/", 1)[0]
    admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{names[0]}"')
    try:
        backtest_store(f"{root}/{names[0]}", CANDLES)
        size = seal(f"{root}/{names[0]}", key, base / "checkpoint.json")

        def copy() -> str:
            names.append(f"tl_{uuid.uuid4().hex[:12]}")
            admin.execute(f'CREATE DATABASE "{names[-1]}" TEMPLATE "{names[0]}"')
            return f"{root}/{names[-1]}"
        yield Built(copy, key, base / "checkpoint.json", size)
    finally:
        for name in reversed(names):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# -- tampering, as someone who can write the database would ---------------------------------------------------

class Table:
    """The event table of either backend, by position."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        sqlite = self.engine.dialect.name == "sqlite"
        self.name, self.id = ("stored_events", "rowid") if sqlite else ("tradeledger_events", "notification_id")

    def rows(self) -> list[tuple[int, str, int, str, bytes]]:
        with self.engine.connect() as conn:
            return [(p, str(s), v, t, bytes(st)) for p, s, v, t, st in conn.execute(sa.text(
                f"SELECT {self.id}, originator_id, originator_version, topic, state FROM {self.name} "
                f"ORDER BY {self.id}"))]

    def run(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql.format(t=self.name, id=self.id)), params)

    def rechain(self, stream: str, edits: dict[int, bytes]) -> None:
        """Replace payloads of `stream` (by position) and recompute its whole chain, as a forger would."""
        previous = bytes(32)
        for position, s, version, topic, state in self.rows():
            if s != stream:
                continue
            payload = edits.get(position, split_state(state)[1])
            previous = chain_digest(previous, uuid.UUID(s), version, topic, payload)
            self.run("UPDATE {t} SET state = :state WHERE {id} = :p", state=previous + payload, p=position)

    def close(self) -> None:
        self.engine.dispose()


def verify_cli(url: str, built: Built, *extra: str) -> tuple[int, dict]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--database", url, "verify", "--json", "--checkpoint", str(built.checkpoint),
                     "--public-key", f"{built.key}.pub", *extra])
    return code, json.loads(out.getvalue())


def outsider(url: str, built: Built, tmp: Path) -> tuple[int, str]:
    tmp.mkdir(exist_ok=True)
    with composed(settings_for(url, built.key)) as container:
        write_evidence(container.feed, container.engine, tmp)
    out = io.StringIO()
    with redirect_stdout(out):
        code = verify_log.main(["--public-key", f"{built.key}.pub", "--checkpoint", str(built.checkpoint),
                                "--export", str(tmp)])
    return code, out.getvalue()


def assert_named(url: str, built: Built, tmp: Path, position: int) -> None:
    code, report = verify_cli(url, built)
    tree = [f for f in report["findings"] if f["check"] == "checkpoint"]
    assert code == 1 and tree and tree[0]["position"] == position, report["findings"][:3]
    code, text = outsider(url, built, tmp)
    assert code == 1 and text.startswith("FAILED") and f"position {position}" in text, text


def fill_position(rows: list[tuple[int, str, int, str, bytes]]) -> tuple[int, str, bytes]:
    return next((p, s, st) for p, s, _, t, st in rows if t.endswith("OrderFilled"))


def test_an_untouched_store_passes_with_later_events_appended(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    with composed(settings_for(url, built.key)) as container:
        command(container.feed, url, "halt", reason="later", by="auditor")
    code, report = verify_cli(url, built)
    assert code == 0 and report["ok"], report["findings"][:3]
    code, text = outsider(url, built, tmp_path)
    assert code == 0 and text.startswith("OK"), text


def test_a_rewritten_fill_with_its_chain_recomputed_and_a_rebuild_is_named(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    table = Table(url)
    position, stream, state = fill_position(table.rows())
    payload = split_state(state)[1]
    edited = payload.replace(b'"price":"', b'"price":"1', 1)
    assert edited != payload
    table.rechain(stream, {position: edited})
    table.close()
    with composed(settings_for(url, built.key)) as container:
        command(container.feed, url, "halt", reason="cover", by="forger")
    assert main(["--database", url, "rebuild"]) == 0
    out = io.StringIO()
    with redirect_stdout(out):
        main(["--database", url, "verify", "--json"])
    # The chains alone do not see it; the fill's own figures (price × quantity against its journal) do.
    assert {f["check"] for f in json.loads(out.getvalue())["findings"]} == {"facts"}
    assert_named(url, built, tmp_path, position)


def test_a_deleted_stream_is_named(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    table = Table(url)
    rows = table.rows()
    market = next(s for _, s, _, t, _ in rows if t.endswith("Market.Created") or "market" in t.lower())
    first = min(p for p, s, *_ in rows if s == market)
    table.run("DELETE FROM {t} WHERE originator_id = :s", s=market if "sqlite" in url else uuid.UUID(market))
    table.close()
    assert_named(url, built, tmp_path, first)


def test_the_deleted_last_events_of_a_stream_are_named(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    table = Table(url)
    rows = [r for r in table.rows() if r[0] <= built.size]
    account = next(s for _, s, _, t, _ in rows if t.endswith("OrderFilled"))
    last_two = [p for p, s, *_ in rows if s == account][-2:]
    table.run("DELETE FROM {t} WHERE {id} >= :p AND {id} <= :q", p=last_two[0], q=last_two[1])
    table.close()
    assert_named(url, built, tmp_path, last_two[0])


def test_two_events_of_different_streams_swapped_in_log_order_are_named(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    table = Table(url)
    rows = table.rows()
    a, b = next((x, y) for x, y in zip(rows, rows[1:]) if x[1] != y[1] and y[0] < built.size)
    table.run("UPDATE {t} SET {id} = -1 WHERE {id} = :p", p=a[0])
    table.run("UPDATE {t} SET {id} = :p WHERE {id} = :q", p=a[0], q=b[0])
    table.run("UPDATE {t} SET {id} = :q WHERE {id} = -1", q=b[0])
    table.close()
    assert_named(url, built, tmp_path, a[0])


def test_an_inserted_event_is_named(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    table = Table(url)
    rows = table.rows()
    position = rows[len(rows) // 2][0]
    table.run("UPDATE {t} SET {id} = {id} + 1000000 WHERE {id} >= :p", p=position)
    table.run("UPDATE {t} SET {id} = {id} - 999999 WHERE {id} >= 1000000")
    _, _, _, topic, state = next(r for r in rows if r[3].endswith("ControlCommand.Issued"))
    forged = uuid.uuid4()
    payload = split_state(state)[1]
    stream = str(forged) if "sqlite" in url else forged
    table.run("INSERT INTO {t} ({id}, originator_id, originator_version, topic, state) "
              "VALUES (:p, :s, 1, :topic, :state)", p=position, s=stream, topic=topic,
              state=chain_digest(bytes(32), forged, 1, topic, payload) + payload)
    table.close()
    assert_named(url, built, tmp_path, position)


def test_a_truncated_tail_is_named(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    table = Table(url)
    rows = table.rows()
    cut = rows[built.size - 5][0]
    table.run("DELETE FROM {t} WHERE {id} >= :p", p=cut)
    table.close()
    code, report = verify_cli(url, built)
    tree = [f for f in report["findings"] if f["check"] == "checkpoint"]
    assert code == 1 and any(f"the checkpoint covers {built.size}" in f["message"] for f in tree), tree
    assert any(f["position"] == cut for f in tree), tree
    code, text = outsider(url, built, tmp_path)
    assert code == 1 and f"the checkpoint covers {built.size}" in text, text


def test_rewritten_stored_leaves_still_refuse_and_narrow_the_range(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    table = Table(url)
    position, stream, state = fill_position(table.rows())
    payload = split_state(state)[1]
    table.rechain(stream, {position: payload.replace(b'"price":"', b'"price":"1', 1)})
    table.run("DELETE FROM merkle_leaves")
    table.run("DELETE FROM merkle_frontier")
    table.close()
    code, report = verify_cli(url, built)
    tree = [f for f in report["findings"] if f["check"] == "checkpoint"]
    assert code == 1 and tree and "among leaves" in tree[0]["message"] and tree[0]["position"] <= position


@pytest.mark.parametrize("forge", ["root", "signature", "other key"])
def test_a_forged_checkpoint_is_refused(built: Built, tmp_path: Path, forge: str) -> None:
    url = built.copy()
    checkpoint = json.loads(built.checkpoint.read_text())
    if forge == "other key":
        other = tmp_path / "other.pem"
        new_key_pair(other)
        from tradeledger.adapters.checkpoints import load_private_key, sign
        from datetime import datetime
        signed = sign(load_private_key(str(other)), checkpoint["store_id"], checkpoint["tree_size"],
                      bytes.fromhex(checkpoint["root_hash"]), datetime.fromisoformat(checkpoint["business_time"]),
                      datetime.fromisoformat(checkpoint["recorded_time"]))
        checkpoint = {f: getattr(signed, f) for f in signed.__struct_fields__}
    else:
        field = "root_hash" if forge == "root" else "signature"
        value = bytearray(bytes.fromhex(checkpoint[field]))
        value[3] ^= 1
        checkpoint[field] = value.hex()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(checkpoint))
    code, report = verify_cli(url, built._replace(checkpoint=forged))
    assert code == 1 and "signature does not hold" in report["findings"][0]["message"]
    code, text = outsider(url, built._replace(checkpoint=forged), tmp_path / "export")
    assert code == 1 and "FAILED" in text


def test_the_notary_resumes_from_its_stored_frontier_and_equals_a_fresh_tree(built: Built) -> None:
    from tradeledger.adapters import merkle
    from tradeledger.adapters.services.logproof import log_leaves

    url = built.copy()
    with composed(settings_for(url, built.key)) as container:
        assert load_tree(container.engine).frontier.size == built.size  # stored by the seal
        command(container.feed, url, "halt", reason="more", by="auditor")
        leaves = [leaf.hash for leaf in log_leaves(container.feed)]
        assert container.notary.advance(sign_due=False) == len(leaves) > built.size
        assert load_tree(container.engine).frontier.root() == merkle.root(leaves)


def test_inclusion_and_consistency_proofs_hold_for_the_outsider(built: Built, tmp_path: Path) -> None:
    url = built.copy()
    with composed(settings_for(url, built.key)) as container:
        command(container.feed, url, "halt", reason="later", by="auditor")
    newer = tmp_path / "newer.json"
    seal(url, built.key, newer)
    inclusion, consistency = tmp_path / "inclusion.json", tmp_path / "consistency.json"
    with redirect_stdout(io.StringIO()):
        assert main(["--database", url, "prove", "--position", "7", "--checkpoint", str(built.checkpoint),
                     "--out", str(inclusion)]) == 0
        assert main(["--database", url, "prove", "--from-checkpoint", str(built.checkpoint), "--checkpoint",
                     str(newer), "--out", str(consistency)]) == 0
    key = ["--public-key", f"{built.key}.pub"]
    for args in (["--checkpoint", str(built.checkpoint), "--proof", str(inclusion)],
                 ["--checkpoint", str(newer), "--old-checkpoint", str(built.checkpoint), "--proof", str(consistency)]):
        out = io.StringIO()
        with redirect_stdout(out):
            assert verify_log.main([*key, *args]) == 0, out.getvalue()
    proof = json.loads(inclusion.read_text())
    proof["leaf_data"] = proof["leaf_data"][:-2] + "00"
    inclusion.write_text(json.dumps(proof))
    with redirect_stdout(io.StringIO()):
        assert verify_log.main([*key, "--checkpoint", str(built.checkpoint), "--proof", str(inclusion)]) == 1
