"""The Merkle tree over the log (docs/log-format.md): the store's identity, the leaf hashes, the frontier.

`store_identity` holds one random UUID, created once per store (an existing store gets one on upgrade); it is
signed into every checkpoint. `merkle_leaves` holds the leaf hash of every event the notary has added (leaf
index = rank in log order, not position: PostgreSQL positions can have gaps), so `verify` can name the first
leaf that differs; `merkle_frontier` (one row) the tree size and its compact frontier. A table that is already
there is left alone, so running this again changes nothing.

Revision ID: 0005_merkle
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005_merkle"
down_revision = "0004"
branch_labels = None
depends_on = None


def tables() -> dict[str, tuple[sa.Column, ...]]:
    return {
        "store_identity": (sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                           sa.Column("store_id", sa.Text, nullable=False)),
        "merkle_leaves": (sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
                          sa.Column("position", sa.BigInteger, nullable=False),
                          sa.Column("leaf_hash", sa.LargeBinary, nullable=False)),
        "merkle_frontier": (sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                            sa.Column("tree_size", sa.BigInteger, nullable=False),
                            sa.Column("frontier", sa.LargeBinary, nullable=False)),
    }


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in tables().items():
        if name not in existing:
            op.create_table(name, *columns)
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM store_identity")).scalar() == 0:
        bind.execute(sa.text("INSERT INTO store_identity (id, store_id) VALUES (1, :store_id)"),
                     {"store_id": str(uuid.uuid4())})


def downgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in tables():
        if name in existing:
            op.drop_table(name)
