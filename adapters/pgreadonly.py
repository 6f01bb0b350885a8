"""eventsourcing's PostgreSQL persistence with every session read-only, for the commands that only read a store.

The library has no setting for libpq's connection options, and its pool connects when the recorder is first
built; between the two this factory hands the pool the option. Named by topic in `store_environment`, so the
slow import of eventsourcing.postgres (~0.2 s, psycopg) happens only when a read-only PostgreSQL store is opened.
"""

from __future__ import annotations

from eventsourcing.persistence import Environment
from eventsourcing.postgres import PostgresFactory

from tradeledger.adapters.database import READ_ONLY_OPTIONS


class ReadOnlyPostgresFactory(PostgresFactory):
    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.datastore.pool.kwargs["options"] = READ_ONLY_OPTIONS  # before the pool opens
