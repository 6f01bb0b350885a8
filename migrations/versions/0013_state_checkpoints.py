"""The blobs of the agent's state checkpoints (docs/agent.md, restarts), beside the log.

`state_checkpoints` holds one row per `AgentRun.StateSaved` event, keyed by that event's log position: the
position of the last event the state covers and the canonical encoding of the trader's and the aggregates'
state, whose SHA-256 the event records (so the hash chain and the Merkle tree cover the digest, and a
rewritten blob is detected). Only the agent writes it, after the append of the event. A table that is
already there is left alone.

Revision ID: 0013_state_checkpoints
Revises: 0012_entries
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_state_checkpoints"
down_revision = "0012_entries"
branch_labels = None
depends_on = None

TABLE = "state_checkpoints"


def upgrade() -> None:
    if TABLE not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(TABLE, sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
                        sa.Column("covers", sa.BigInteger, nullable=False),
                        sa.Column("state", sa.LargeBinary, nullable=False))


def downgrade() -> None:
    if TABLE in sa.inspect(op.get_bind()).get_table_names():
        op.drop_table(TABLE)
