"""Signed checkpoints: the note an Ed25519 key signs, its JSON form, and the key files.

The signed message (docs/log-format.md) is the text note

    tradeledger checkpoint v1\\nstore <uuid>\\nsize <n>\\nroot <hex>\\nbusiness <RFC3339>\\nrecorded <RFC3339>\\n

with both times in UTC with microseconds and a `Z`. The private key lives in a PEM file outside the database
(`audit.signing_key`); it is never logged, recorded or printed.
"""

from __future__ import annotations

import errno
import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tradeledger.adapters.errors import Refused

FORMAT = "tradeledger-checkpoint-v1"


class KeyFileError(Refused, ValueError):
    """A key file that is missing, unreadable or not an Ed25519 key (the message names the setting)."""


class CheckpointFile(msgspec.Struct, frozen=True, kw_only=True):
    """One checkpoint as JSON (the file `seal` writes, a line of checkpoints.jsonl)."""

    format: str
    store_id: str
    tree_size: int
    root_hash: str
    business_time: str
    recorded_time: str
    key_id: str
    signature: str

    def note(self) -> bytes:
        return note(self.store_id, self.tree_size, self.root_hash, self.business_time, self.recorded_time)


def rfc3339(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def note(store_id: str, size: int, root_hex: str, business: str, recorded: str) -> bytes:
    return (f"tradeledger checkpoint v1\nstore {store_id}\nsize {size}\nroot {root_hex}\nbusiness {business}\n"
            f"recorded {recorded}\n").encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(key: Ed25519PrivateKey, store_id: str, size: int, root: bytes, business: datetime,
         recorded: datetime) -> CheckpointFile:
    fields = {"store_id": store_id, "tree_size": size, "root_hash": root.hex(), "business_time": rfc3339(business),
              "recorded_time": rfc3339(recorded)}
    unsigned = CheckpointFile(format=FORMAT, key_id=key_id(key.public_key()), signature="", **fields)
    return msgspec.structs.replace(unsigned, signature=key.sign(unsigned.note()).hex())


def signature_holds(checkpoint: CheckpointFile, public: Ed25519PublicKey) -> bool:
    try:
        public.verify(bytes.fromhex(checkpoint.signature), checkpoint.note())
    except (InvalidSignature, ValueError):
        return False
    return checkpoint.format == FORMAT and checkpoint.key_id == key_id(public)


def new_key_pair(out: Path) -> str:
    """Write OUT (PKCS8 PEM, mode 0600, never overwritten) and OUT.pub; the key id."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = Path(f"{out}.pub")
    if public.exists():
        raise FileExistsError(errno.EEXIST, "exists", str(public))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # raises FileExistsError: never overwrite
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(key.public_key())


def load_private_key(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as error:
        raise KeyFileError(f"audit.signing_key: cannot read {path}: {error.strerror}") from None
    except (ValueError, TypeError):
        raise KeyFileError(f"audit.signing_key: {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"audit.signing_key: {path} is not an Ed25519 key")
    return key


def load_public_key(path: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as error:
        raise KeyFileError(f"--public-key: cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise KeyFileError(f"--public-key: {path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"--public-key: {path} is not an Ed25519 key")
    return key
