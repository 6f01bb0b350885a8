"""docs/log-format.md's worked example still holds for the code: leaf bytes and hash, note, signature, proof."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tradeledger.adapters import merkle
from tradeledger.adapters.checkpoints import CheckpointFile, signature_holds

DOC = (Path(__file__).parent.parent / "docs" / "log-format.md").read_text()
EXAMPLE = DOC[DOC.index("## Worked example"):]


def block(kind: str) -> str:
    return re.search(rf"```{kind}\n(.*?)\n```", EXAMPLE, re.S).group(1)  # type: ignore[union-attr]


def test_the_worked_example_holds() -> None:
    public = serialization.load_pem_public_key(block("").encode())
    data = bytes.fromhex(block("leaf-data"))
    stated = re.search(r"its leaf hash `([0-9a-f]{64})`", EXAMPLE).group(1)  # type: ignore[union-attr]
    assert merkle.leaf_hash(data).hex() == stated
    assert data.startswith(b"tradeledger-leaf-v1") and int.from_bytes(data[19:27], "big") == 1
    checkpoint = CheckpointFile(**json.loads(block("json")))
    assert checkpoint.note().decode().rstrip("\n") == block("note")
    assert signature_holds(checkpoint, public)  # type: ignore[arg-type]
    path = [bytes.fromhex(h) for h in block("audit-path").split()]
    assert merkle.verify_inclusion(0, checkpoint.tree_size, merkle.leaf_hash(data), path,
                                   bytes.fromhex(checkpoint.root_hash))


def test_the_example_script_makes_an_example_that_holds(monkeypatch) -> None:
    from scripts.log_example import example

    monkeypatch.setitem(globals(), "EXAMPLE", "## Worked example\n" + example(30))
    test_the_worked_example_holds()
