"""Keys and their tenants as the hot path sees them: a short-lived cache over the store, so
a request costs a dictionary lookup and one SHA-256, and a revocation made through any
replica takes effect everywhere within `ttl_s`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from turnout.tenancy.records import KeyRecord, Tenant, TenantStore

_MAX_ENTRIES = 10_000
"""Bound on cached key ids (unknown ids included, so guessing ids cannot grow memory)."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A key with its tenant, as last read from the store (None: no such key)."""

    key: KeyRecord | None
    tenant: Tenant | None


class KeyDirectory:
    """Looks keys up by id through a TTL cache; concurrent misses for one id share one
    store read."""

    def __init__(self, store: TenantStore, ttl_s: float,
                 monotonic: Callable[[], float]) -> None:
        self.store = store
        self._ttl = ttl_s
        self._now = monotonic
        self._cache: dict[str, tuple[float, KeyEntry]] = {}
        self._loading: dict[str, asyncio.Future[KeyEntry]] = {}

    async def entry(self, key_id: str) -> KeyEntry:
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        pending = self._loading.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[KeyEntry] = asyncio.get_running_loop().create_future()
        self._loading[key_id] = future
        try:
            entry = await self._read(key_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._loading.pop(key_id, None)
        future.set_result(entry)
        self._remember(key_id, entry)
        return entry

    def forget(self, key_id: str) -> None:
        """Drop a cached key (this replica changed it: no need to wait for the TTL)."""
        self._cache.pop(key_id, None)

    def forget_tenant(self, tenant_id: str) -> None:
        for key_id, (_, entry) in list(self._cache.items()):
            if entry.key is not None and entry.key.tenant_id == tenant_id:
                del self._cache[key_id]

    async def _read(self, key_id: str) -> KeyEntry:
        key = await self.store.get_key(key_id)
        tenant = await self.store.get_tenant(key.tenant_id) if key is not None else None
        return KeyEntry(key, tenant)

    def _remember(self, key_id: str, entry: KeyEntry) -> None:
        if self._ttl <= 0:
            return
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.pop(next(iter(self._cache)))  # oldest insertion first
        self._cache[key_id] = (self._now() + self._ttl, entry)
