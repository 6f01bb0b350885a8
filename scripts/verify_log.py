#!/usr/bin/env python3
"""An outsider's verifier of a tradeledger log (docs/log-format.md): the standard library and `cryptography` only.

    verify_log.py --public-key KEY.pub --checkpoint CP [--proof PROOF] [--old-checkpoint CP] [--export DIR]

Checks the checkpoint's signature; with --proof, an inclusion proof (of one event, against CP) or a consistency
proof (from --old-checkpoint's tree to CP's); with --export, the manifest's SHA-256 of every file, every leaf's
hash from its data, and the root of CP's first tree_size leaves, naming the first leaf that differs.
Exit 0 when everything holds, 1 naming what failed, 2 for bad arguments. It imports nothing of tradeledger
on purpose: the Merkle functions below are RFC 9162 §2.1, written out again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "tradeledger-checkpoint-v1"


class Failed(Exception):
    """A check that does not hold (exit 1)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """The Merkle Tree Hash, folding the roots of the perfect subtrees (equal to §2.1.1's recursion)."""
    stack: list[tuple[int, bytes]] = []
    for leaf in leaves:
        node, height = leaf, 0
        while stack and stack[-1][0] == height:
            node, height = node_hash(stack.pop()[1], node), height + 1
        stack.append((height, node))
    if not stack:
        return hashlib.sha256(b"").digest()
    node = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        node = node_hash(left, node)
    return node


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, first: bytes, second: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2."""
    if not 0 < m <= n:
        return False
    if m == n:
        return not proof and first == second
    path = ([first] if m & (m - 1) == 0 else []) + proof
    if not path:
        return False
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first and sr == second


def note(cp: dict) -> bytes:
    return (f"tradeledger checkpoint v1\nstore {cp['store_id']}\nsize {cp['tree_size']}\nroot {cp['root_hash']}\n"
            f"business {cp['business_time']}\nrecorded {cp['recorded_time']}\n").encode()


def check_signature(cp: dict, key: Ed25519PublicKey, name: str) -> None:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if cp.get("format") != FORMAT:
        raise Failed(f"{name}: format {cp.get('format')!r} is not {FORMAT}")
    if cp["key_id"] != hashlib.sha256(raw).hexdigest():
        raise Failed(f"{name}: signed by key {cp['key_id']}, not by this public key")
    try:
        key.verify(bytes.fromhex(cp["signature"]), note(cp))
    except (InvalidSignature, ValueError):
        raise Failed(f"{name}: the signature does not hold (the checkpoint was altered or forged)") from None


def check_proof(proof: dict, cp: dict, old: dict | None) -> str:
    root, size = bytes.fromhex(cp["root_hash"]), cp["tree_size"]
    if proof.get("kind") == "inclusion":
        data = bytes.fromhex(proof["leaf_data"])
        if leaf_hash(data).hex() != proof["leaf_hash"]:
            raise Failed(f"proof: the leaf data of position {proof['position']} does not hash to its leaf hash")
        if int.from_bytes(data[19:27], "big") != proof["position"]:
            raise Failed(f"proof: the leaf data is of position {int.from_bytes(data[19:27], 'big')}, "
                         f"not {proof['position']}")
        if proof["tree_size"] != size or not verify_inclusion(proof["leaf_index"], size, leaf_hash(data),
                                                              [bytes.fromhex(h) for h in proof["audit_path"]], root):
            raise Failed(f"proof: the event at position {proof['position']} is not leaf {proof['leaf_index']} "
                         f"of the checkpoint's tree")
        return f"position {proof['position']} is leaf {proof['leaf_index']} of the tree of {size}"
    if proof.get("kind") == "consistency":
        if old is None:
            raise Failed("proof: a consistency proof needs --old-checkpoint")
        m = old["tree_size"]
        if (proof["first_size"], proof["second_size"]) != (m, size) or not verify_consistency(
                m, size, bytes.fromhex(old["root_hash"]), root, [bytes.fromhex(h) for h in proof["proof"]]):
            raise Failed(f"proof: the tree of {size} does not extend the old checkpoint's tree of {m}")
        return f"the tree of {size} extends the tree of {m}"
    raise Failed(f"proof: unknown kind {proof.get('kind')!r}")


def check_export(directory: Path, cp: dict) -> str:
    manifest = json.loads((directory / "manifest.json").read_text())["sha256"]
    for name, digest in manifest.items():
        if hashlib.sha256((directory / name).read_bytes()).hexdigest() != digest:
            raise Failed(f"export: {name} does not match the manifest's SHA-256")
    if "leaves.jsonl" not in manifest:
        raise Failed("export: the manifest does not list leaves.jsonl")
    leaves, previous = [], 0
    with (directory / "leaves.jsonl").open() as file:
        for line in file:
            leaf = json.loads(line)
            data = bytes.fromhex(leaf["leaf_data"])
            position = int.from_bytes(data[19:27], "big")
            if leaf_hash(data).hex() != leaf["leaf_hash"] or position != leaf["position"]:
                named = min(position, leaf.get("signed_position", position))
                raise Failed(f"export: leaf {leaf['leaf_index']} at position {named}: the event there differs from "
                             f"the leaf the notary recorded (of position {leaf.get('signed_position')})")
            if position <= previous:
                raise Failed(f"export: leaf {leaf['leaf_index']} at position {position} is out of log order")
            previous = position
            leaves.append(bytes.fromhex(leaf["leaf_hash"]))
    size = cp["tree_size"]
    if len(leaves) < size:
        raise Failed(f"export: the log has {len(leaves)} leaves, the checkpoint covers {size}")
    if mth(leaves[:size]).hex() != cp["root_hash"]:
        raise Failed(f"export: the root of the first {size} leaves is not the checkpoint's")
    return f"the export's {len(leaves)} leaves hold the checkpoint's root at {size}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--public-key", required=True, type=Path)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--proof", type=Path)
    parser.add_argument("--old-checkpoint", type=Path)
    parser.add_argument("--export", type=Path)
    args = parser.parse_args(argv)
    try:
        key = serialization.load_pem_public_key(args.public_key.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        cp = json.loads(args.checkpoint.read_text())
        old = json.loads(args.old_checkpoint.read_text()) if args.old_checkpoint else None
        proof = json.loads(args.proof.read_text()) if args.proof else None
    except (OSError, ValueError) as error:
        print(f"verify_log: {error}", file=sys.stderr)
        return 2
    try:
        check_signature(cp, key, "checkpoint")
        lines = [f"checkpoint: signature holds (store {cp['store_id']}, {cp['tree_size']} leaves)"]
        if old is not None:
            check_signature(old, key, "old checkpoint")
            if old["store_id"] != cp["store_id"]:
                raise Failed("old checkpoint: of another store")
        if proof is not None:
            lines.append(check_proof(proof, cp, old))
        if args.export is not None:
            lines.append(check_export(args.export, cp))
    except Failed as failure:
        print(f"FAILED: {failure}")
        return 1
    except (OSError, KeyError, ValueError) as error:
        print(f"verify_log: unreadable input: {error!r}", file=sys.stderr)
        return 2
    print("OK: " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
