"""The notary: keeps the Merkle tree over the log current, off the write path, and signs checkpoints.

It reads the log after the last leaf it has, computes each event's leaf hash (adapters.leaves), extends the
frontier and stores, in one transaction, the new leaf hashes and the new frontier and size, on condition that
the stored size is still the one it read: another process that advanced it first wins, and this one reloads.
A restart costs nothing (the frontier is stored). With a signing key, it signs a checkpoint whenever the tree
crosses a multiple of `audit.checkpoint_every` leaves, and on `checkpoint()` (seal, a clean stop); each one is
appended to the log (domain.checkpoint: one stream per checkpoint) and, with `audit.checkpoint_dir`, to
DIR/checkpoints.jsonl.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

import msgspec
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import IntegrityError

from tradeledger.adapters.checkpoints import CheckpointFile, sign
from tradeledger.adapters.eventlog import EventLog, StoredRow
from tradeledger.adapters.eventstore import DIGEST_SIZE, recorded_times
from tradeledger.adapters.leaves import row_leaf_hash
from tradeledger.adapters.merkle import Frontier
from tradeledger.adapters.services.ports import Clock, utcnow
from tradeledger.domain.checkpoint import Checkpoint

logger = logging.getLogger(__name__)

PAGE = 5_000  # events per notary transaction
CHECKPOINTS_FILE = "checkpoints.jsonl"


class NoSigningKey(RuntimeError):
    """A checkpoint was asked for and no `audit.signing_key` is set."""


class Tree(NamedTuple):
    frontier: Frontier
    position: int  # the log position of the last leaf (0: none)


def store_id(engine: sa.Engine) -> UUID:
    with engine.connect() as conn:
        return UUID(conn.execute(sa.text("SELECT store_id FROM store_identity WHERE id = 1")).scalar_one())


def load_tree(engine: sa.Engine) -> Tree:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT tree_size, frontier FROM merkle_frontier WHERE id = 1")).first()
        if row is None:
            return Tree(Frontier(), 0)
        position = conn.execute(sa.text("SELECT position FROM merkle_leaves WHERE leaf_index = :i"),
                                {"i": row.tree_size - 1}).scalar() or 0
    return Tree(Frontier.decode(row.tree_size, bytes(row.frontier)), position)


def stored_leaves(engine: sa.Engine, first: int = 0, limit: int = 100_000) -> list[tuple[int, int, bytes]]:
    """(leaf index, position, leaf hash) of the stored leaves from `first`, in order."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT leaf_index, position, leaf_hash FROM merkle_leaves "
                                    "WHERE leaf_index >= :first ORDER BY leaf_index LIMIT :limit"),
                            {"first": first, "limit": limit})
        return [(i, p, bytes(h)) for i, p, h in rows]


def business_time(row: StoredRow) -> datetime:
    assert row.state is not None
    return recorded_times(row.state[DIGEST_SIZE:]).timestamp


class Notary:
    def __init__(self, log: EventLog, engine: sa.Engine, *, key: Callable[[], Ed25519PrivateKey | None],
                 every: int, directory: str | None = None, clock: Clock = utcnow) -> None:
        """`key`: loads the signing key when a checkpoint is due (None: none configured; raises when unusable)."""
        self.log, self.engine, self.key, self.every, self.directory, self.clock = (
            log, engine, key, every, directory, clock)

    def advance(self, *, sign_due: bool = True) -> int:
        """Add every event after the tree's last leaf; the tree size. Signs the checkpoints that fell due."""
        tree = load_tree(self.engine)
        while True:
            rows = self.log.stored(tree.position, PAGE)
            if not rows:
                return tree.frontier.size
            old = tree.frontier.size
            frontier = Frontier(old, tree.frontier.hashes)
            hashes = [row_leaf_hash(row) for row in rows]
            for leaf in hashes:
                frontier.append(leaf)
            if not self._store(old, frontier, rows, hashes):
                tree = load_tree(self.engine)  # another notary advanced it: continue from there
                continue
            tree = Tree(frontier, rows[-1].position)
            if sign_due and old // self.every < frontier.size // self.every and self.key() is not None:
                self._sign(tree, rows[-1])

    def _store(self, old: int, frontier: Frontier, rows: list[StoredRow], hashes: list[bytes]) -> bool:
        try:
            with self.engine.begin() as conn:
                state = {"size": frontier.size, "frontier": frontier.encode(), "old": old}
                if old == 0:
                    conn.execute(sa.text("INSERT INTO merkle_frontier (id, tree_size, frontier) "
                                         "VALUES (1, :size, :frontier)"), state)
                elif conn.execute(sa.text("UPDATE merkle_frontier SET tree_size = :size, frontier = :frontier "
                                          "WHERE id = 1 AND tree_size = :old"), state).rowcount != 1:
                    raise _Moved
                conn.execute(sa.text("INSERT INTO merkle_leaves (leaf_index, position, leaf_hash) "
                                     "VALUES (:i, :p, :h)"),
                             [{"i": old + k, "p": row.position, "h": leaf} for k, (row, leaf)
                              in enumerate(zip(rows, hashes))])
        except (_Moved, sa.exc.IntegrityError):
            return False
        return True

    def checkpoint(self) -> CheckpointFile:
        """Bring the tree to the head and sign it (NoSigningKey without a key)."""
        if self.key() is None:
            raise NoSigningKey("no signing key: make one with `tradeledger keys new --out FILE` and set "
                               "audit.signing_key to FILE")
        self.advance(sign_due=False)
        tree = load_tree(self.engine)
        last = self.log.stored(tree.position - 1, 1) if tree.position else []
        return self._sign(tree, last[0] if last else None)

    def _sign(self, tree: Tree, last: StoredRow | None) -> CheckpointFile:
        key = self.key()
        assert key is not None
        store = store_id(self.engine)
        now = self.clock()
        business = business_time(last) if last is not None else now
        signed = sign(key, str(store), tree.frontier.size, tree.frontier.root(), business, now)
        fields = msgspec.structs.asdict(signed)
        del fields["format"], fields["store_id"], fields["tree_size"]
        try:
            self.log.append(Checkpoint.signed(store, tree.frontier.size, at=business, **fields).collect_events())
        except IntegrityError:
            logger.info("a checkpoint of size %s was already recorded", tree.frontier.size)
        if self.directory is not None:
            with (Path(self.directory) / CHECKPOINTS_FILE).open("ab") as file:
                file.write(msgspec.json.encode(signed) + b"\n")
        return signed


class _Moved(Exception):
    """The stored tree moved on under this notary."""
