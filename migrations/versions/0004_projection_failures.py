"""Projection failures: when a projection first failed on the event at `error_position`.

`projection_tracking.error` already holds the error and `error_position` the
event; `error_at` adds the time (timestamptz on PostgreSQL, fixed-width
ISO-8601 UTC text on SQLite, see projections.rows.UtcDateTime). A column that
is already there is left alone, so running this again changes nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "projection_tracking"
COLUMN = "error_at"


def has_column() -> bool:
    return COLUMN in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}


def upgrade() -> None:
    if not has_column():
        op.add_column(TABLE, sa.Column(COLUMN, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    if has_column():
        with op.batch_alter_table(TABLE) as batch:  # SQLite before 3.35 cannot drop a column in place
            batch.drop_column(COLUMN)
