"""Long-lived resources that stages share: stores opened once and kept across config
swaps, owned by the engine and closed with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from turnout.tenancy.directory import KeyDirectory
from turnout.tenancy.records import TenantStore

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from turnout.config.runtime import SharedStateSettings, TenancySettings
    from turnout.spend.writer import LedgerWriter
    from turnout.stages.shared_stores import SharedStores


class _Monotonic:
    """A `Clock` over a monotonic function."""

    __slots__ = ("monotonic",)

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic


class StageResources:
    """Opens each store on first use (migrating its database) and keeps it."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._directories: dict[tuple[str, float], KeyDirectory] = {}
        self._stores: dict[str, TenantStore] = {}
        self._redis: dict[str, Redis] = {}
        self._shared: dict[SharedStateSettings, SharedStores] = {}
        self._ledgers: dict[tuple[str, str], LedgerWriter] = {}
        self._lock = asyncio.Lock()

    async def tenant_store(self, url: str) -> TenantStore:
        store = self._stores.get(url)
        if store is not None:
            return store
        async with self._lock:
            store = self._stores.get(url)
            if store is None:
                from turnout.tenancy.sql import SqlTenantStore  # SQLAlchemy only when used

                store = self._stores[url] = await SqlTenantStore.open(url)
        return store

    async def sql_engine(self, url: str) -> AsyncEngine:
        """The database engine of the tenant store at `url`, for the stores that live in
        the same database (the spend ledger, tenants' provider keys)."""
        from turnout.tenancy.sql import SqlTenantStore

        store = await self.tenant_store(url)
        assert isinstance(store, SqlTenantStore)
        return store.engine

    def redis(self, url: str) -> Redis:
        """One connection pool per Redis URL, shared by every store that uses it."""
        client = self._redis.get(url)
        if client is None:
            from turnout.state.redis_base import redis_client  # redis-py only when used

            client = self._redis[url] = redis_client(url)
        return client

    def shared_stores(self, settings: SharedStateSettings) -> SharedStores:
        """The rate limiter and budget ledger for `settings` (in-process, or Redis with
        the configured fallback), one per distinct setting, kept across config swaps."""
        stores = self._shared.get(settings)
        if stores is None:
            from turnout.stages.shared_stores import SharedStores

            redis = self.redis(settings.redis_url) if settings.redis_url else None
            stores = self._shared[settings] = SharedStores(
                settings, _Monotonic(self._monotonic), redis)
        return stores

    def spend_ledger(self, settings: TenancySettings) -> LedgerWriter:
        """The spend ledger's writer for the tenancy database and journal directory of
        `settings`, kept across config swaps. Nothing is opened until it is started or
        first used."""
        where = (settings.database_url, settings.spend_journal)
        writer = self._ledgers.get(where)
        if writer is None:
            from pathlib import Path

            from turnout.spend.store import SqlSpendStore
            from turnout.spend.writer import LedgerWriter

            url = settings.database_url

            async def open_store() -> SqlSpendStore:
                return SqlSpendStore(await self.sql_engine(url))

            writer = self._ledgers[where] = LedgerWriter(Path(settings.spend_journal),
                                                         open_store)
        return writer

    def all_spend_ledgers(self) -> list[LedgerWriter]:
        return list(self._ledgers.values())

    async def start(self) -> None:
        """Start the spend ledgers: replay dead processes' journals, begin writing."""
        for writer in list(self._ledgers.values()):
            await writer.start()

    def all_shared_stores(self) -> list[SharedStores]:
        return list(self._shared.values())

    async def key_directory(self, url: str, ttl_s: float) -> KeyDirectory:
        directory = self._directories.get((url, ttl_s))
        if directory is None:
            store = await self.tenant_store(url)
            directory = self._directories.setdefault(
                (url, ttl_s), KeyDirectory(store, ttl_s, self._monotonic))
        return directory

    async def aclose(self) -> None:
        ledgers, self._ledgers = list(self._ledgers.values()), {}
        for writer in ledgers:  # flushed while their database is still open
            await writer.aclose()
        stores, self._stores, self._directories = list(self._stores.values()), {}, {}
        clients, self._redis = list(self._redis.values()), {}
        shared, self._shared = list(self._shared.values()), {}
        for stores_ in shared:
            await stores_.aclose()
        for store in stores:
            await store.close()
        for client in clients:
            await client.aclose()
