"""The evidence an export carries (docs/log-format.md): the leaves, the latest signed checkpoint, a manifest.

`leaves.jsonl`: one line per event in log order, `{"leaf_index", "position", "leaf_data", "leaf_hash",
"signed_position"}` (hex), where `leaf_hash` and `signed_position` are the notary's stored hash and position of
that leaf when it has one (else this data's), so an outsider
with the standard library recomputes every leaf and the root. `checkpoint.json`: the latest checkpoint
recorded in the log (absent when there is none). `manifest.json`, written last: the SHA-256 of every other file
in the directory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import sqlalchemy as sa

from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.leaves import leaf_data
from tradeledger.adapters.merkle import leaf_hash
from tradeledger.adapters.services.logproof import latest_checkpoint
from tradeledger.adapters.services.notary import stored_leaves

LEAVES, CHECKPOINT, MANIFEST = "leaves.jsonl", "checkpoint.json", "manifest.json"


def write_evidence(log: EventLog, engine: sa.Engine, out: Path) -> dict[str, Path]:
    """Write the three files into `out` (an export directory); their paths by name."""
    written = {"leaves": out / LEAVES}
    signed = _stored(engine)
    with written["leaves"].open("w") as file:
        for index, row in enumerate(log.scan_stored()):
            data = leaf_data(row)
            position, stored = signed.get(index, (row.position, leaf_hash(data)))
            file.write(json.dumps({"leaf_index": index, "position": row.position, "leaf_data": data.hex(),
                                   "leaf_hash": stored.hex(), "signed_position": position}) + "\n")
    checkpoint = latest_checkpoint(log)
    if checkpoint is not None:
        written["checkpoint"] = out / CHECKPOINT
        written["checkpoint"].write_bytes(msgspec.json.format(msgspec.json.encode(checkpoint)) + b"\n")
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())
             if p.is_file() and p.name != MANIFEST}
    written["manifest"] = out / MANIFEST
    written["manifest"].write_text(json.dumps({"sha256": files}, indent=2) + "\n")
    return written


def _stored(engine: sa.Engine) -> dict[int, tuple[int, bytes]]:
    try:
        return {index: (position, leaf) for index, position, leaf in stored_leaves(engine, 0, 2**62)}
    except sa.exc.SQLAlchemyError:  # a store the notary never ran on (or older than its tables)
        return {}
