"""The agent's lease: one writer of the Account and Market streams per store, released when its holder dies.

SQLite: an exclusive `flock` on `<database>.lock`, next to the database file.
The kernel drops it when the holding process exits, however it exits
(SIGKILL included), and it conflicts across open files of one process too,
so an API thread in the agent's process never takes it from the agent.

PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a connection
of its own, held for the holder's life; the server releases it when that
session ends, which a killed process's closed socket ends.

`acquire` never blocks: it takes the lease or says it cannot.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import Connection, text
from sqlalchemy.pool import NullPool

from tradeledger.adapters import database

# The advisory lock key of the agent's lease: any fixed number no other lock in the database uses.
AGENT_LOCK = 0x7472_6164_6167_6E74  # "tradagnt"


class Lease(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class FileLease:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO | None = None  # a file object, so a lease dropped unreleased closes (and unlocks)

    def acquire(self) -> bool:
        if self.file is not None:
            return True
        file = open(self.path, "ab")  # noqa: SIM115 - held open for the holder's life
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        self.file = file
        return True

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing the only descriptor of the open file drops its flock
            self.file = None


class AdvisoryLease:
    def __init__(self, url: str) -> None:
        self.engine = database.create_db_engine(url, poolclass=NullPool)  # closing really ends the session
        self.connection: Connection | None = None

    def acquire(self) -> bool:
        if self.connection is not None:
            return True
        connection = self.engine.connect()
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": AGENT_LOCK}).scalar()
        connection.commit()  # ends the SELECT's transaction; the session keeps the lock
        if not taken:
            connection.close()
            return False
        self.connection = connection
        return True

    def release(self) -> None:
        if self.connection is not None:
            self.connection.close()  # the session ends, and with it the lock
            self.connection = None


def lease_for(url: str) -> Lease:
    """The agent lease of the store at `url`."""
    if url.startswith("sqlite:///"):
        return FileLease(Path(url.removeprefix("sqlite:///") + ".lock").expanduser())
    return AdvisoryLease(url)
