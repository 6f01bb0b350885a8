"""Event store tables, exactly as eventsourcing's built-in recorders expect them.

The library can create these itself; we turn that off (CREATE_TABLE=no) so
alembic owns every table. SQLite uses the rowid as the notification id;
PostgreSQL uses a bigserial plus the composite type the recorder inserts with.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PG_TABLE = "tradeledger_events"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE stored_events ("
            "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        return
    op.execute(
        f"CREATE TABLE {PG_TABLE} ("
        "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
        "topic text, state bytea, notification_id bigserial, "
        "PRIMARY KEY (originator_id, originator_version))"
    )
    op.execute(f"CREATE UNIQUE INDEX {PG_TABLE}_notification_id_idx ON {PG_TABLE} (notification_id ASC)")
    op.execute(
        "DO $$ BEGIN "
        "CREATE TYPE stored_event_uuid AS (originator_id uuid, originator_version bigint, topic text, state bytea); "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE stored_events")
        return
    op.execute(f"DROP TABLE {PG_TABLE}")
