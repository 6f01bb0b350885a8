"""Database URLs and schema migrations (alembic owns every table)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The PostgreSQL advisory lock key migrators queue on: any fixed number no other lock in the database uses.
MIGRATION_LOCK = 0x7472_6164_656C_6467  # "tradeldg"
READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"  # libpq options: every transaction is read-only
EVENT_TABLES = {"sqlite": "stored_events", "postgresql": "tradeledger_events"}  # as migration 0001 creates them
POSITIONS = {"sqlite": "rowid", "postgresql": "notification_id"}  # the log position, as eventsourcing numbers it
# The page size of a new SQLite store that is filled in bulk (a backtest's): its rows are events of up to a
# kilobyte, appended thousands at a time. Measured on a 103,680-candle backtest: 12 % less time than SQLite's
# 4 KiB pages, 12 % smaller file (docs/benchmarks.md); small durable commits write whole pages, so every other
# store keeps the default.
BULK_PAGE_SIZE = 32_768


class StoreUnavailable(Exception):
    """The store a read-only command was given cannot be read as it is: missing, not a store, or not migrated."""


def sqlalchemy_url(url: str) -> str:
    """Our URLs name the engine; SQLAlchemy also wants the driver for PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def ensure_sqlite_directory(url: str) -> None:
    if url.startswith("sqlite:///"):
        sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)


def create_db_engine(url: str, *, read_only: bool = False, page_size: int | None = None, **kwargs: object) -> Engine:
    """`read_only`: no connection can write (and nothing is created: not the SQLite file, not its directory).
    `page_size`: a SQLite file this engine creates gets pages of that size (an existing one keeps its own)."""
    if read_only:
        target, connect = _read_only(url)
        engine = create_engine(target, **connect, **kwargs)  # type: ignore[arg-type]
    else:
        ensure_sqlite_directory(url)
        engine = create_engine(sqlalchemy_url(url), **kwargs)  # type: ignore[arg-type]
    if engine.dialect.name == "sqlite":
        if page_size is not None:  # before the WAL pragma: a database in WAL mode keeps its page size
            event.listen(engine, "connect", lambda connection, _record: connection.execute(
                f"PRAGMA page_size={int(page_size)}"))
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _read_only(url: str) -> tuple[str, dict[str, object]]:
    """The SQLAlchemy URL and connect arguments of a connection that cannot write."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{sqlite_path(url)}?mode=ro&uri=true", {}
    return sqlalchemy_url(url), {"connect_args": {"options": READ_ONLY_OPTIONS}}


def log_head(engine: Engine) -> int:
    """The log's last position (0 when empty), read without the event store's classes (`health` needs no more)."""
    dialect = engine.dialect.name
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT MAX({POSITIONS[dialect]}) FROM {EVENT_TABLES[dialect]}")).scalar() or 0


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///")).expanduser().resolve()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers (API, projections) run while the agent writes; the busy
    # timeout turns a brief writer overlap into a wait instead of an error. It is
    # set first because switching a fresh file to WAL can wait for a lock too.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def check_store(url: str, *, need_head: bool) -> None:
    """StoreUnavailable unless `url` names an existing event store, with its schema at head if `need_head`.

    It only reads: a command that audits or reads a store must not create or migrate what it was pointed at
    (a mistyped path would otherwise become an empty store that verifies "OK: 0 events").
    """
    if url.startswith("sqlite:///") and not sqlite_path(url).is_file():
        raise StoreUnavailable(f"no event store at {sqlite_path(url)} (nothing was created; "
                               "`tradeledger db upgrade` creates one)")
    engine = create_db_engine(url, read_only=True, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            revision = (connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                        if "alembic_version" in tables else None)
            events = EVENT_TABLES[engine.dialect.name]
    finally:
        engine.dispose()
    if events not in tables:
        raise StoreUnavailable(f"the database holds no event store (no table {events}); "
                               "`tradeledger db upgrade` creates one")
    if not need_head or revision == (head := head_revision()):
        return
    from alembic.script import ScriptDirectory  # alembic only to tell an old schema from a newer release's

    known = revision is None or any(s.revision == revision for s in
                                    ScriptDirectory.from_config(_alembic_config()).walk_revisions())
    raise StoreUnavailable(f"the store's schema is at revision {revision}, this release reads {head}: run "
                           "`tradeledger db upgrade`" if known else
                           f"the store's schema revision {revision} is unknown to this release "
                           "(a newer release migrated it)")


REVISION_LINE = re.compile(r'^(down_revision|revision) = "([^"]+)"$', re.MULTILINE)


def head_revision() -> str:
    """The newest migration's revision: the one no other migration revises, read from the migration files'
    own `revision = ...` lines, so that `health` and the audits need not import alembic to check a schema
    (the chain is linear; tests/test_migrations.py checks this is alembic's head)."""
    revisions, revised = set(), set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else revised).add(value)
    (head,) = revisions - revised
    return head


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(url: str, *, page_size: int | None = None) -> None:
    """`alembic upgrade head` on the given database, one process at a time; a SQLite file it creates gets
    pages of `page_size` (default: SQLite's).

    Processes started together on a fresh database would each find no schema and all create it. So the
    migrating connection first takes a lock the others queue on; whoever follows finds the schema at head.
    """
    from alembic import command

    config = _alembic_config()
    engine = create_db_engine(url, poolclass=NullPool, page_size=page_size)  # closing a connection ends its session
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
