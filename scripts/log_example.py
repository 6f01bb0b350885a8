"""Print docs/log-format.md's worked example, computed from a real store: a short backtest of real candles.

    .venv/bin/python -m scripts.log_example [--candles 60]   (from the repository root)

The key is a TEST key made from a fixed seed (never use it for anything else); the store id and the recorded
times differ on each run. tests/test_log_format_doc.py checks that the example in the document still holds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tradeledger.adapters.leaves import leaf_data
from tradeledger.adapters.merkle import leaf_hash
from tradeledger.adapters.services.logproof import prove_inclusion
from tradeledger.settings import load_settings
from tests.backtested import backtest_store
from tests.composing import composed

TEST_SEED = bytes(range(32))  # a test key, published here on purpose


def example(candles: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        key_path = Path(tmp) / "test.pem"
        key = Ed25519PrivateKey.from_private_bytes(TEST_SEED)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        url = f"sqlite:///{tmp}/example.sqlite"
        backtest_store(url, candles)
        settings = load_settings(overrides={"database.url": url, "audit.signing_key": str(key_path)}, environ={})
        with composed(settings) as container:
            checkpoint = container.notary.checkpoint()
            row = container.feed.stored(0, 1)[0]
            proof = prove_inclusion(container.feed, row.position, checkpoint.tree_size)
    data = leaf_data(row)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    fields = {f: getattr(checkpoint, f) for f in checkpoint.__struct_fields__}
    return "\n".join([
        f"A backtest of {candles} ETH/BTC 5m candles; the test key's public key:", "", "```", public.strip(), "```",
        "", f"The first leaf (position {row.position}, topic `{row.topic}`), its data in hex:", "",
        "```leaf-data", data.hex(), "```", "", f"its leaf hash `{leaf_hash(data).hex()}`.", "",
        "The checkpoint `seal` wrote, and the note it signed:", "", "```json", json.dumps(fields, indent=2),
        "```", "", "```note", checkpoint.note().decode().rstrip("\n"), "```", "",
        f"The inclusion proof of position {row.position} (leaf {proof.leaf_index} of {proof.tree_size}), "
        "its audit path:", "", "```audit-path", *proof.audit_path, "```",
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candles", type=int, default=60)
    print(example(parser.parse_args().candles))
