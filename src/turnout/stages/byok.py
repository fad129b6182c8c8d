"""Bring your own key: a tenant's calls reach a provider with the tenant's own key.

Before each attempt (retries, fallbacks and hedges included), when a tenant's virtual key
authenticated the call and the tenant stored a key for the candidate deployment's provider,
the attempt goes out with that key in place of the platform's. Everything else about the
deployment (base URL, headers, model) stays the config's: a tenant chooses a credential,
never a host. Its scrubber learns the tenant's key, so an upstream that echoes it back is
scrubbed like for any configured secret.

Which key, per call:
- a tenant's virtual key, and the tenant stored a key for this provider: the tenant's key;
- a tenant's virtual key, and no key stored for this provider (or the provider is not in
  `tenancy.byok_providers`): the platform key, as for every other caller;
- a static gateway key, or an in-process call: the platform key.

A stored key that cannot be opened (its master key is no longer configured, or the row was
altered) fails the attempt with an `InternalError` that says so, and nothing falls back to
the platform key: the tenant meant its own account to be billed.

Decrypted keys (and the absence of one) are cached per (tenant, provider) for
`tenancy.key_cache_s`, so an attempt costs a dictionary lookup; a key stored, replaced or
deleted through any replica takes effect everywhere within that time. The stage exists
only in configs with master keys: without them it is not in the pipeline at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from turnout.config.runtime import TenancySettings
from turnout.core.errors import InternalError
from turnout.core.scrub import SecretScrubber
from turnout.engine.pipeline import Call, Stage
from turnout.engine.plan import Candidate
from turnout.providers.types import Deployment
from turnout.stages.resources import StageResources
from turnout.tenancy.provider_keys import SqlProviderKeyStore
from turnout.tenancy.sealing import Sealer, SealError

_log = logging.getLogger("turnout.byok")

MAX_ENTRIES = 10_000
"""Bound on cached (tenant, provider) pairs, absent keys included."""

_Slot = tuple[str, str]


class TenantKey:
    """A tenant's decrypted key for one provider, and how it rewrites a deployment."""

    __slots__ = ("_base", "_key", "_scrubber")

    def __init__(self, key: str) -> None:
        self._key = key
        self._base: SecretScrubber | None = None
        self._scrubber: SecretScrubber | None = None

    def __repr__(self) -> str:
        return "TenantKey(<redacted>)"

    def applied(self, deployment: Deployment) -> Deployment:
        """`deployment` with this key and a scrubber that knows it; nothing else changes."""
        if deployment.scrubber is not self._base or self._scrubber is None:
            # Every deployment of one config shares one scrubber: built once per entry.
            self._base = deployment.scrubber
            self._scrubber = deployment.scrubber.extended([self._key])
        target = dataclasses.replace(deployment.target, api_key=self._key)
        return dataclasses.replace(deployment, target=target, scrubber=self._scrubber)


@dataclasses.dataclass(frozen=True, slots=True)
class Unopenable:
    """A stored key this gateway cannot open; `provider` names it for the error."""

    provider: str


_Entry = TenantKey | Unopenable | None


class BringYourOwnKey(Stage):
    """Swaps in a tenant's own provider key before each attempt (see the module docstring)."""

    name = "byok"

    def __init__(self, settings: TenancySettings, resources: StageResources,
                 monotonic: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        self._providers = settings.byok_providers
        self._sealer = Sealer(settings.master_keys)
        self._url = settings.database_url
        self._ttl = settings.key_cache_s
        self._resources = resources
        self._now = monotonic
        self._max = max_entries
        self._cache: dict[_Slot, tuple[float, _Entry]] = {}
        self._loading: dict[_Slot, asyncio.Future[_Entry]] = {}
        self._store: SqlProviderKeyStore | None = None

    async def on_attempt(self, call: Call, candidate: Candidate) -> Candidate:
        identity = call.ctx.identity
        if identity is None:
            return candidate
        deployment = candidate.deployment
        if deployment.provider not in self._providers:
            return candidate
        slot = (identity.tenant_id, deployment.provider)
        cached = self._cache.get(slot)
        entry = cached[1] if cached is not None and cached[0] > self._now() else (
            await self._load(slot))
        if entry is None:
            return candidate
        if isinstance(entry, Unopenable):
            raise InternalError(
                f"Your stored key for provider '{entry.provider}' cannot be decrypted by "
                "this gateway; an operator must restore its master key, or store the key "
                "again.")
        return dataclasses.replace(candidate, deployment=entry.applied(deployment))

    async def _load(self, slot: _Slot) -> _Entry:
        """Read one slot from the store; concurrent misses for it share one read."""
        pending = self._loading.get(slot)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._loading[slot] = future
        try:
            entry = await self._read(slot)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._loading.pop(slot, None)
        future.set_result(entry)
        self._remember(slot, entry)
        return entry

    async def _read(self, slot: _Slot) -> _Entry:
        if self._store is None:
            engine = await self._resources.sql_engine(self._url)
            self._store = SqlProviderKeyStore(engine, self._sealer)
        tenant_id, provider = slot
        try:
            key = await self._store.reveal(tenant_id, provider)
        except SealError as exc:  # its message names ids only, never key material
            _log.error("tenant %s cannot use its own key for %s: %s", tenant_id, provider, exc)
            return Unopenable(provider)
        return None if key is None else TenantKey(key)

    def _remember(self, slot: _Slot, entry: _Entry) -> None:
        if self._ttl <= 0:
            return
        if len(self._cache) >= self._max and slot not in self._cache:
            self._cache.pop(next(iter(self._cache)))  # oldest insertion first
        self._cache[slot] = (self._now() + self._ttl, entry)
