"""Database URLs and schema migrations (alembic owns every table)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The PostgreSQL advisory lock key migrators queue on: any fixed number no other lock in the database uses.
MIGRATION_LOCK = 0x7472_6164_656C_6467  # "tradeldg"


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
    # timeout turns a brief writer overlap into a wait instead of an error. It is
    # set first because switching a fresh file to WAL can wait for a lock too.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def upgrade(url: str) -> None:
    """`alembic upgrade head` on the given database, one process at a time.

    Processes started together on a fresh database would each find no schema and all create it. So the
    migrating connection first takes a lock the others queue on; whoever follows finds the schema at head.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_db_engine(url, poolclass=NullPool)  # closing the connection really ends its session
    if engine.dialect.name == "sqlite":
        _begin_exclusive(engine)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                _advisory_lock(connection)
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    finally:
        engine.dispose()


def _advisory_lock(connection: Connection) -> None:
    """A session lock, held across the migration's commit until the connection closes or the process dies.

    Not the transaction-scoped variant: a migration may commit early (alembic's `autocommit_block`).
    """
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
    connection.commit()  # ends the implicit transaction of the SELECT; the session keeps the lock


def _begin_exclusive(engine: Engine) -> None:
    """Every transaction on `engine` begins EXCLUSIVE: the write lock is taken before alembic's first read.

    Left to itself, Python's sqlite3 runs CREATE TABLE outside any transaction and opens a deferred one only
    before an INSERT, so two migrators both see no schema. SQLAlchemy's recipe for taking over transaction
    control: the driver emits no BEGIN of its own and the begin event emits ours; COMMIT is unchanged.
    """
    event.listen(engine, "connect", _no_driver_begin)
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN EXCLUSIVE"))


def _no_driver_begin(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None
