"""Database URLs and schema migrations (alembic owns every table)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def sqlalchemy_url(url: str) -> str:
    """Our URLs name the engine; SQLAlchemy also wants the driver for PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def ensure_sqlite_directory(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def create_db_engine(url: str, **kwargs: object) -> Engine:
    ensure_sqlite_directory(url)
    engine = create_engine(sqlalchemy_url(url), **kwargs)  # type: ignore[arg-type]
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers (API, projections) run while the agent writes; the busy
    # timeout turns a brief writer overlap into a wait instead of an error.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def upgrade(url: str) -> None:
    """`alembic upgrade head` on the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
