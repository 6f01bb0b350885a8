"""The candle files a backtest or file replay read, as `AgentRun.Started` records them: names and SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tradeledger.domain.agent_run import InputFile

__all__ = ["InputFile", "input_file"]

CHUNK = 1 << 20


def input_file(path: str | Path) -> InputFile:
    """The file's name and SHA-256 of its bytes; raises OSError when it cannot be read."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return InputFile(name=path.name, sha256=digest.hexdigest())
