"""Alembic environment: tradeledger runs migrations programmatically (`tradeledger db upgrade`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from tradeledger.migrations.autogenerate import compare_type, include_name, target_metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      include_name=include_name, compare_type=compare_type)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
