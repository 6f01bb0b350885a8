"""Checking the log against a signed checkpoint, and the proofs an outsider checks (docs/log-format.md).

`verify_checkpoint` recomputes every leaf from the stored events, compares the tree with the checkpoint's
signed root and with the current tree (a consistency proof from the checkpoint's size), and names the first
leaf that differs: by the notary's stored leaf hashes when their tree at the checkpoint's size has the signed
root, or else between the last checkpoint recorded in the log that still matches and the first that does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import msgspec
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tradeledger.adapters import merkle
from tradeledger.adapters.checkpoints import FORMAT, CheckpointFile, signature_holds
from tradeledger.adapters.eventlog import EventLog
from tradeledger.adapters.leaves import leaf_data, row_leaf_hash
from tradeledger.adapters.services.audit import Finding
from tradeledger.adapters.services.notary import store_id, stored_leaves
from tradeledger.adapters.services.ports import scan
from tradeledger.domain.checkpoint import Checkpoint


class Leaf(NamedTuple):
    position: int
    hash: bytes


class InclusionProof(msgspec.Struct, frozen=True, kw_only=True):
    kind: str = "inclusion"
    position: int
    leaf_index: int
    leaf_data: str
    leaf_hash: str
    tree_size: int
    root_hash: str
    audit_path: list[str]


class ConsistencyProof(msgspec.Struct, frozen=True, kw_only=True):
    kind: str = "consistency"
    first_size: int
    first_root: str
    second_size: int
    second_root: str
    proof: list[str]


class ProofError(ValueError):
    """A proof that cannot be made (a position not in the log, a checkpoint beyond it)."""


def log_leaves(log: EventLog) -> list[Leaf]:
    return [Leaf(row.position, row_leaf_hash(row)) for row in log.scan_stored()]


def recorded_checkpoints(log: EventLog) -> Iterator[CheckpointFile]:
    for recorded in scan(log, types=[Checkpoint.Signed]):
        fields = {k: v for k, v in vars(recorded.event).items()
                  if k in CheckpointFile.__struct_fields__}
        yield CheckpointFile(format=FORMAT, **fields)


def latest_checkpoint(log: EventLog) -> CheckpointFile | None:
    latest = None
    for latest in recorded_checkpoints(log):  # noqa: B007 - the last one is wanted
        pass
    return latest


def prove_inclusion(log: EventLog, position: int, size: int | None = None) -> InclusionProof:
    leaves = log_leaves(log)
    size = len(leaves) if size is None else size
    if size > len(leaves):
        raise ProofError(f"the checkpoint covers {size} leaves, the log has {len(leaves)}")
    index = next((i for i, leaf in enumerate(leaves[:size]) if leaf.position == position), None)
    if index is None:
        raise ProofError(f"position {position} is not among the {size} leaves of the tree")
    row = log.stored(position - 1, 1)[0]
    hashes = [leaf.hash for leaf in leaves[:size]]
    return InclusionProof(position=position, leaf_index=index, leaf_data=leaf_data(row).hex(),
                          leaf_hash=hashes[index].hex(), tree_size=size, root_hash=merkle.root(hashes).hex(),
                          audit_path=[h.hex() for h in merkle.inclusion_path(index, hashes)])


def prove_consistency(log: EventLog, first: int, second: int | None = None) -> ConsistencyProof:
    hashes = [leaf.hash for leaf in log_leaves(log)]
    second = len(hashes) if second is None else second
    if not 0 < first <= second <= len(hashes):
        raise ProofError(f"a consistency proof needs 0 < {first} <= {second} <= {len(hashes)} (the log's leaves)")
    return ConsistencyProof(first_size=first, first_root=merkle.root(hashes[:first]).hex(), second_size=second,
                            second_root=merkle.root(hashes[:second]).hex(),
                            proof=[h.hex() for h in merkle.consistency_proof(first, hashes[:second])])


def verify_checkpoint(log: EventLog, engine: sa.Engine, checkpoint: CheckpointFile,
                      public: Ed25519PublicKey) -> list[Finding]:
    """Every finding against this checkpoint (none: the log holds every leaf it signed, unchanged)."""
    def finding(message: str, position: int | None = None) -> Finding:
        return Finding(check="checkpoint", stream=f"tree of {checkpoint.tree_size}", version=None,
                       position=position, message=message)

    if not signature_holds(checkpoint, public):
        return [finding("the checkpoint's signature does not hold for this public key (forged or altered)")]
    found = []
    ours = _store_id(engine)
    if ours != checkpoint.store_id:
        found.append(finding(f"the checkpoint is of store {checkpoint.store_id}, this store is {ours}"))
    leaves = log_leaves(log)
    m, n = checkpoint.tree_size, len(leaves)
    hashes = [leaf.hash for leaf in leaves]
    if n < m:
        found.append(finding(f"the log has {n} leaves, the checkpoint covers {m} (the tail was truncated "
                             "or events deleted)"))
    elif merkle.root(hashes[:m]).hex() == checkpoint.root_hash:
        proof = merkle.consistency_proof(m, hashes) if m else []
        if m and not merkle.verify_consistency(m, n, bytes.fromhex(checkpoint.root_hash), merkle.root(hashes),
                                               proof):
            found.append(finding("the current tree is not consistent with the checkpoint"))
        return found
    return [first_difference(log, engine, leaves, checkpoint, public, finding), *found]


def _store_id(engine: sa.Engine) -> str | None:
    try:
        return str(store_id(engine))
    except sa.exc.SQLAlchemyError:
        return None


def first_difference(log: EventLog, engine: sa.Engine, leaves: list[Leaf], checkpoint: CheckpointFile,
                     public: Ed25519PublicKey, finding: Callable[[str, int | None], Finding]) -> Finding:
    m = checkpoint.tree_size
    stored = _stored(engine, m)
    if len(stored) == m and merkle.root([h for _, h in stored]).hex() == checkpoint.root_hash:
        for index, (position, signed) in enumerate(stored):
            if index >= len(leaves) or leaves[index].hash != signed:
                now = (f"the log holds position {leaves[index].position} there" if index < len(leaves)
                       else "the log has no such leaf")
                return finding(f"leaf {index} differs from the signed one: the checkpoint covers the event at "
                               f"position {position}, {now}",
                               min(position, leaves[index].position) if index < len(leaves) else position)
    good, bad = 0, m
    for recorded in recorded_checkpoints(log):
        size = recorded.tree_size
        if not signature_holds(recorded, public) or size > len(leaves) or size > m:
            continue
        if merkle.root([leaf.hash for leaf in leaves[:size]]).hex() == recorded.root_hash:
            good = max(good, size)
        else:
            bad = min(bad, size)
    first = leaves[good].position if good < len(leaves) else None
    last = leaves[bad - 1].position if 0 < bad <= len(leaves) else None
    return finding(f"the log's tree at size {m} differs from the signed root, and the stored leaf hashes do not "
                   f"match it either: the first changed leaf is among leaves {good}..{bad - 1} (positions "
                   f"{first}..{last})", first)


def _stored(engine: sa.Engine, m: int) -> list[tuple[int, bytes]]:
    try:
        rows = stored_leaves(engine, 0, m)
    except sa.exc.SQLAlchemyError:
        return []
    return [(position, leaf) for _, position, leaf in rows]
