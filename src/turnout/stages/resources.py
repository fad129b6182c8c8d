"""Long-lived resources that stages share: stores opened once and kept across config
swaps, owned by the engine and closed with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from turnout.tenancy.directory import KeyDirectory
from turnout.tenancy.records import TenantStore


class StageResources:
    """Opens each store on first use (migrating its database) and keeps it."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._directories: dict[tuple[str, float], KeyDirectory] = {}
        self._stores: dict[str, TenantStore] = {}
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

    async def key_directory(self, url: str, ttl_s: float) -> KeyDirectory:
        directory = self._directories.get((url, ttl_s))
        if directory is None:
            store = await self.tenant_store(url)
            directory = self._directories.setdefault(
                (url, ttl_s), KeyDirectory(store, ttl_s, self._monotonic))
        return directory

    async def aclose(self) -> None:
        stores, self._stores, self._directories = list(self._stores.values()), {}, {}
        for store in stores:
            await store.close()
