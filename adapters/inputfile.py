"""The candle file a backtest or file replay read, as `AgentRun.Started` records it: its name and SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec

CHUNK = 1 << 20


class InputFile(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # the file's name, without its directory (which says nothing about its content)
    sha256: str  # hex


def input_file(path: str | Path) -> InputFile:
    """The file's name and SHA-256 of its bytes; raises OSError when it cannot be read."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return InputFile(name=path.name, sha256=digest.hexdigest())
