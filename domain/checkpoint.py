"""A signed checkpoint of the log's Merkle tree, recorded in the log itself (docs/log-format.md).

One stream per checkpoint, its id derived from the store and the tree size, so two processes that sign the
same size write the same stream (the second append conflicts and is dropped) and never conflict otherwise.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from tradeledger.domain.aggregate import LedgerAggregate
from tradeledger.domain.values import require_utc


def checkpoint_id(store_id: UUID, tree_size: int) -> UUID:
    return uuid5(store_id, f"checkpoint:{tree_size}")


class Checkpoint(LedgerAggregate):
    class Signed(Aggregate.Created):
        """`timestamp`: the business time of the last leaf; the signed note holds both times."""

        store_id: str
        tree_size: int
        root_hash: str
        business_time: str
        recorded_time: str
        key_id: str
        signature: str

    def __init__(self, store_id: str, tree_size: int, root_hash: str, business_time: str, recorded_time: str,
                 key_id: str, signature: str) -> None:
        self.store_id = store_id
        self.tree_size = tree_size
        self.root_hash = root_hash
        self.business_time = business_time
        self.recorded_time = recorded_time
        self.key_id = key_id
        self.signature = signature

    @classmethod
    def signed(cls, store_id: UUID, tree_size: int, *, root_hash: str, business_time: str, recorded_time: str,
               key_id: str, signature: str, at: datetime) -> Checkpoint:
        return cls._create(cls.Signed, id=checkpoint_id(store_id, tree_size), store_id=str(store_id),
                           tree_size=tree_size, root_hash=root_hash, business_time=business_time,
                           recorded_time=recorded_time, key_id=key_id, signature=signature,
                           timestamp=require_utc("at", at))
