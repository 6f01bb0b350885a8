"""The composition root: the one place that turns settings into infrastructure."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from tradeledger.adapters import database
from tradeledger.adapters.eventfeed import StoreFeed
from tradeledger.adapters.eventstore import Clock, LedgerStore, open_store, utc_now
from tradeledger.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar

    from tradeledger.adapters.telegram.bot import TelegramBot


class Container:
    """Builds each piece on first use and closes what it opened, in reverse order."""

    def __init__(self, settings: Settings, *, migrate: bool = True, clock: Clock = utc_now) -> None:
        """`clock`: the wall clock that stamps each append with its recorded time."""
        self.settings = settings
        self.clock = clock
        self.url = settings.database.url
        if migrate:
            database.upgrade(self.url)

    @cached_property
    def store(self) -> LedgerStore:
        database.ensure_sqlite_directory(self.url)
        return open_store(self.url, clock=self.clock)

    @cached_property
    def engine(self) -> Engine:
        return database.create_db_engine(self.url, pool_pre_ping=True)

    @cached_property
    def feed(self) -> StoreFeed:
        return StoreFeed(self.store, self.engine)

    def api_app(self) -> Litestar:
        # Imported here: only `serve` and `run` need Litestar, and it is slow to import for every command.
        from tradeledger.adapters.api.app import create_app

        return create_app(store=self.store, engine=self.engine, feed=self.feed, settings=self.settings)

    def telegram_bot(self) -> TelegramBot:
        # Imported here: only `telegram` and `run` with a token need python-telegram-bot.
        from tradeledger.adapters.telegram.bot import TelegramBot

        return TelegramBot(store=self.store, engine=self.engine, settings=self.settings)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
