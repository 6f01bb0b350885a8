"""The optional health file (`projections.health_file`) for external probes.

One writer (the projection runner's progress subscriber) replaces the whole
file atomically: write a temp file in the same directory, fsync it,
`os.replace` it over the old one, fsync the directory. A reader opens either
the old file or the new one, never a half-written one, and no two writers
race on it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import msgspec

from tradeledger.projections.health_rule import HealthReport

logger = logging.getLogger(__name__)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


class HealthFile:
    """Rewrites the health file with a freshly composed report each time it is called."""

    def __init__(self, path: str | Path, compose: Callable[[], HealthReport]) -> None:
        self.path = Path(path)
        self.compose = compose

    def __call__(self, *_progress: object) -> None:
        try:
            write_atomically(self.path, msgspec.json.encode(self.compose()))
        except Exception:
            # A probe file must never stop the projections it reports on.
            logger.exception("could not write the health file %s", self.path)
