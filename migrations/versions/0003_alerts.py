"""Alerts: the alerts read model (rebuildable) and the outbox with its delivery state (not rebuildable).

The tables mirror projections/alerts.py and projections/outbox.py. Times are
`timestamptz` on PostgreSQL and fixed-width ISO-8601 UTC text on SQLite
(see projections.rows.UtcDateTime).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def tables() -> dict[str, tuple[sa.Column, ...]]:
    # Fresh Column objects on every call: a Column can belong to one Table only.
    return {
        "alerts": (
            sa.Column("position", sa.BigInteger, primary_key=True), sa.Column("kind", sa.Text, nullable=False),
            sa.Column("at", TIME, nullable=False), sa.Column("text", sa.Text, nullable=False),
        ),
        "alerts_state": (
            sa.Column("scope", sa.Text, primary_key=True), sa.Column("key", sa.Text, primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        ),
        "alert_chats": (
            sa.Column("chat_id", sa.BigInteger, primary_key=True),
            sa.Column("enqueued_through", sa.BigInteger, nullable=False),
            sa.Column("added_at", TIME, nullable=False),
        ),
        "alert_outbox": (
            sa.Column("alert_id", sa.Text, primary_key=True), sa.Column("chat_id", sa.BigInteger, primary_key=True),
            sa.Column("position", sa.BigInteger, nullable=False), sa.Column("kind", sa.Text, nullable=False),
            sa.Column("text", sa.Text, nullable=False), sa.Column("created_at", TIME, nullable=False),
            sa.Column("status", sa.Text, nullable=False), sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("last_error", sa.Text, nullable=True), sa.Column("next_attempt_at", TIME, nullable=False),
            sa.Column("claimed_by", sa.Text, nullable=True), sa.Column("sent_at", TIME, nullable=True),
            sa.Column("message_id", sa.BigInteger, nullable=True),
        ),
    }


def upgrade() -> None:
    for name, columns in tables().items():
        op.create_table(name, *columns)
    op.create_index("alert_outbox_queue", "alert_outbox", ["chat_id", "status", "position"])


def downgrade() -> None:
    op.drop_index("alert_outbox_queue", table_name="alert_outbox")
    for name in reversed(tables()):
        op.drop_table(name)
