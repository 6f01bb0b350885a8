"""The verifiable log's commands: `verify`, `keys new`, `seal`, `prove` (docs/log-format.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tradeledger.adapters.checkpoints import CheckpointFile, KeyFileError, load_public_key, new_key_pair
from tradeledger.adapters.cliargs import LOG_POSITIONS, command, emit, fail, integer, json_file, new_file, option
from tradeledger.adapters.services import audit, logproof, readmodels
from tradeledger.adapters.services.notary import NoSigningKey

if TYPE_CHECKING:
    from tradeledger.adapters.composition import Composition

CHECKPOINT = json_file(CheckpointFile)


def public_key_file(text: str) -> Ed25519PublicKey:
    """An argparse type: an Ed25519 public key (PEM), read before anything is opened."""
    try:
        return load_public_key(text)
    except KeyFileError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--public-key: ")) from None


@command(
    "verify",
    option("--checkpoint", type=CHECKPOINT, metavar="FILE",
           help="also check the log against this signed checkpoint (the Merkle tree, docs/log-format.md)"),
    option("--public-key", type=public_key_file, metavar="FILE",
           help="the checkpoint's public key (default: audit.signing_key + .pub)"),
    reads="log and read models",
)
def verify(args: argparse.Namespace, container: Composition) -> int:
    readmodels.bulk_gc()
    try:
        tree_findings = checkpoint_findings(args, container)
    except KeyFileError as error:
        return fail(args.command_name, str(error))
    report = audit.verify_log(container.feed)
    checks, projection_findings = audit.verify_read_models(container.engine, container.feed)
    findings = [*tree_findings, *report.findings, *projection_findings]
    report = audit.VerifyReport(ok=not findings, events=report.events, streams=report.streams, findings=findings)
    if report.ok:
        text = "\n".join([f"OK: {report.events} events in {report.streams} streams; hash chains and ledger "
                          "invariants hold; read models equal a fresh fold and reconcile",
                          *(f"  {c.name}: compared at position {c.position} (lag {c.lag})" if c.compared
                            else f"  {c.name}: moved while being read, not compared" for c in checks)])
    else:
        text = "\n".join([f"FAILED: {len(report.findings)} finding(s); the first:", f"  {report.findings[0]}",
                          *(f"  {f}" for f in report.findings[1:20])])
    emit(args, report, text)
    return 0 if report.ok else 1


def write(args: argparse.Namespace, value: object, out: Path | None, summary: str) -> None:
    data = msgspec.json.format(msgspec.json.encode(value)) + b"\n"
    if out is not None:
        out.write_bytes(data)
        print(f"{summary} -> {out}")
    else:
        sys.stdout.write(data.decode())


@command("keys new",
         option("--out", type=new_file, required=True, metavar="FILE", help="the private key file (never "
                "overwritten); set audit.signing_key to it"), store=False)
def keys_new(args: argparse.Namespace, _container: object) -> int:
    try:
        key = new_key_pair(args.out)
    except FileExistsError as error:
        return fail(args.command_name, f"{error.filename}: exists; not overwritten")
    print(msgspec.json.encode({"key_id": key, "public_key": f"{args.out}.pub"}).decode() if args.json
          else f"key {key}: private key {args.out}, public key {args.out}.pub")
    return 0


@command("seal",
         option("--out", type=new_file, metavar="FILE", help="write the checkpoint JSON to FILE"))
def seal(args: argparse.Namespace, container: object) -> int:
    try:
        checkpoint = container.notary.checkpoint()  # type: ignore[attr-defined]
    except (NoSigningKey, KeyFileError) as error:
        return fail(args.command_name, str(error))
    write(args, checkpoint, args.out, f"checkpoint of {checkpoint.tree_size} leaves, root {checkpoint.root_hash}")
    return 0


@command("prove",
         option("--position", type=integer(1, LOG_POSITIONS[1]), metavar="N", help="the event's log position"),
         option("--checkpoint", type=CHECKPOINT, metavar="FILE",
                help="the tree of this checkpoint (default: the latest recorded, or the current tree)"),
         option("--from-checkpoint", type=CHECKPOINT, metavar="OLD",
                help="a consistency proof from OLD's tree to --checkpoint's (or the current) tree"),
         option("--out", type=new_file, metavar="FILE", help="write the proof to FILE"),
         reads="log")
def prove(args: argparse.Namespace, container: object) -> int:
    if (args.position is None) == (args.from_checkpoint is None):
        return fail(args.command_name, "give exactly one of --position and --from-checkpoint")
    log = container.feed  # type: ignore[attr-defined]
    target = args.checkpoint or (logproof.latest_checkpoint(log) if args.position is not None else None)
    size = None if target is None else target.tree_size
    try:
        if args.position is not None:
            proof: object = logproof.prove_inclusion(log, args.position, size)
        else:
            proof = logproof.prove_consistency(log, args.from_checkpoint.tree_size, size)
    except logproof.ProofError as error:
        return fail(args.command_name, str(error))
    write(args, proof, args.out, "proof written")
    return 0


def checkpoint_findings(args: argparse.Namespace, container: object) -> list[logproof.Finding]:
    """verify --checkpoint: the findings against it (none without the option); KeyFileError for a bad key."""
    if args.checkpoint is None:
        return []
    public = args.public_key
    if public is None:
        signing_key = container.settings.audit.signing_key  # type: ignore[attr-defined]
        if signing_key is None:
            raise KeyFileError("--public-key: give the checkpoint's public key (or set audit.signing_key)")
        public = load_public_key(f"{signing_key}.pub")
    return logproof.verify_checkpoint(container.feed, container.engine,  # type: ignore[attr-defined]
                                      args.checkpoint, public)
