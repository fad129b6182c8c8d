"""Tenants and virtual keys as immutable records, and the store protocol that holds them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from turnout.tenancy.policy import NO_POLICY, Policy

TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""Tenant ids: short lowercase slugs (`acme`, `team-42`), safe in URLs, logs and SQL."""


@dataclass(frozen=True, slots=True)
class Tenant:
    """A client of an agency, a team or an app: owns virtual keys and their spend."""

    id: str
    name: str
    created_at: datetime
    disabled_at: datetime | None = None
    policy: Policy = NO_POLICY
    """Limits and budgets shared by all the tenant's keys."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A virtual key as stored: never the key itself, only the digest of its secret."""

    id: str
    tenant_id: str
    name: str
    digest: bytes
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    aliases: frozenset[str] | None = None
    """The model aliases the key may call; None for every alias."""
    policy: Policy = NO_POLICY
    """Limits and budgets of this key alone (its tenant's apply as well)."""

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at


class TenantConflict(Exception):
    """A tenant with that id exists already."""


class TenantStore(Protocol):
    """Durable tenants and keys (SQLite embedded, PostgreSQL for several replicas)."""

    async def create_tenant(self, tenant_id: str, name: str) -> Tenant: ...

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def list_tenants(self) -> list[Tenant]: ...

    async def set_tenant_disabled(self, tenant_id: str, disabled: bool) -> Tenant | None: ...

    async def set_tenant_policy(self, tenant_id: str, policy: Policy) -> Tenant | None: ...

    async def add_key(self, record: KeyRecord) -> KeyRecord: ...

    async def get_key(self, key_id: str) -> KeyRecord | None: ...

    async def list_keys(self, tenant_id: str) -> list[KeyRecord]: ...

    async def revoke_key(self, key_id: str, at: datetime) -> KeyRecord | None: ...

    async def set_key_policy(self, key_id: str, policy: Policy) -> KeyRecord | None: ...

    async def close(self) -> None: ...
