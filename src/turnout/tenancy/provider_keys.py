"""Tenants' own provider keys in the tenancy database (`turnout_provider_keys`), sealed
with `Sealer`: only ciphertext, the sealing master key's id and a fingerprint are stored.

Every statement is built with bound parameters; the same code runs on SQLite and
PostgreSQL (the upsert uses each dialect's `ON CONFLICT`). A stored key has no base URL:
where a tenant's key is sent is the config's business alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import RowMapping, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.tenancy.sealing import Sealer, SealError, UnknownMasterKey
from turnout.tenancy.tables import provider_keys

_table = provider_keys


@dataclass(frozen=True, slots=True)
class ProviderKeyInfo:
    """What may be shown of a stored key: never the key, nor its ciphertext."""

    tenant_id: str
    provider: str
    fingerprint: str
    master_key_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored key that could not be opened, and why (no key material in `reason`)."""

    tenant_id: str
    provider: str
    master_key_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReencryptReport:
    """What `reencrypt_all` did, in counts."""

    current_id: str
    reencrypted: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0
    """Rows stored anew while they were being re-encrypted (the new value is kept)."""
    unreadable: tuple[Unreadable, ...] = ()
    remaining: dict[str, int] = field(default_factory=dict)
    """Rows per master key id other than the current one, after the run."""


class SqlProviderKeyStore:
    """Store, read, list, delete and re-encrypt tenants' provider keys."""

    def __init__(self, engine: AsyncEngine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer

    async def put(self, tenant_id: str, provider: str, api_key: str) -> ProviderKeyInfo:
        """Store (or replace) the tenant's key for `provider`, sealed under the current
        master key; a replaced key keeps its `created_at`."""
        _check_names(tenant_id, provider)
        sealed = self._sealer.seal(api_key, tenant_id, provider)
        now = datetime.now(UTC)
        values = {"ciphertext": sealed.ciphertext, "master_key_id": sealed.master_key_id,
                  "fingerprint": sealed.fingerprint, "updated_at": now}
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_table).values(tenant_id=tenant_id, provider=provider,
                                          created_at=now, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[_table.c.tenant_id, _table.c.provider], set_=values)
        async with self._engine.begin() as conn:
            await conn.execute(statement)
        info = await self.get(tenant_id, provider)
        assert info is not None
        return info

    async def get(self, tenant_id: str, provider: str) -> ProviderKeyInfo | None:
        """The stored key's metadata, or None."""
        row = await self._row(tenant_id, provider)
        return None if row is None else _info(row)

    async def list_keys(self, tenant_id: str) -> list[ProviderKeyInfo]:
        """Every stored key of the tenant, by provider name."""
        if not _storable(tenant_id):
            return []
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(_table).where(_table.c.tenant_id == tenant_id)
                                      .order_by(_table.c.provider))
        return [_info(row._mapping) for row in rows]

    async def reveal(self, tenant_id: str, provider: str) -> str | None:
        """The tenant's key for `provider` in the clear, or None when it stored none.
        Raises `SealError` when the stored key cannot be opened. For the request path
        only: never log, return or show what this gives."""
        row = await self._row(tenant_id, provider)
        if row is None:
            return None
        return self._sealer.open(bytes(row["ciphertext"]), row["master_key_id"],
                                 tenant_id, provider)

    async def delete(self, tenant_id: str, provider: str) -> bool:
        """Delete the tenant's key for `provider`; False when there was none."""
        if not (_storable(tenant_id) and _storable(provider)):
            return False
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(_table).where(_table.c.tenant_id == tenant_id,
                                                             _table.c.provider == provider))
        return result.rowcount > 0

    async def reencrypt_all(self) -> ReencryptReport:
        """Seal every stored key anew under the current master key (rotation). Idempotent;
        a key that cannot be opened is reported and left as it is, and a key stored anew
        meanwhile is not overwritten."""
        current = self._sealer.current_id
        rows = await self._all_rows()
        done = already = changed = 0
        unreadable: list[Unreadable] = []
        for row in rows:
            tenant_id, provider, old_id = row["tenant_id"], row["provider"], row["master_key_id"]
            old = bytes(row["ciphertext"])
            try:
                sealed = self._sealer.reseal(old, old_id, tenant_id, provider)
            except SealError as exc:
                reason = "unknown master key" if isinstance(exc, UnknownMasterKey) else (
                    "does not authenticate")
                unreadable.append(Unreadable(tenant_id, provider, old_id, reason))
                continue
            if sealed is None:
                already += 1
                continue
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(_table)
                    .where(_table.c.tenant_id == tenant_id, _table.c.provider == provider,
                           _table.c.master_key_id == old_id, _table.c.ciphertext == old)
                    .values(ciphertext=sealed.ciphertext, master_key_id=sealed.master_key_id,
                            fingerprint=sealed.fingerprint))
            if result.rowcount:
                done += 1
            else:
                changed += 1
        return ReencryptReport(current, done, already, changed, tuple(unreadable),
                            await self.count_by_master_key(exclude=current))

    async def count_by_master_key(self, exclude: str | None = None) -> dict[str, int]:
        """How many stored keys each master key id sealed (`exclude` left out)."""
        async with self._engine.connect() as conn:
            ids = (await conn.execute(select(_table.c.master_key_id))).scalars().all()
        return dict(sorted(Counter(i for i in ids if i != exclude).items()))

    async def _all_rows(self) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return [row._mapping for row in await conn.execute(
                select(_table).order_by(_table.c.tenant_id, _table.c.provider))]

    async def _row(self, tenant_id: str, provider: str) -> RowMapping | None:
        if not (_storable(tenant_id) and _storable(provider)):
            return None
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_table).where(
                _table.c.tenant_id == tenant_id, _table.c.provider == provider))).first()
        return None if row is None else row._mapping


def _check_names(tenant_id: str, provider: str) -> None:
    if not (_storable(tenant_id) and _storable(provider)) or not tenant_id or not provider:
        raise ValueError("tenant ids and provider names are non-empty, without NUL")


def _storable(value: str) -> bool:
    # PostgreSQL text cannot hold NUL: such a name matches nothing.
    return "\x00" not in value


def _utc(value: datetime) -> datetime:
    # SQLite keeps no time zone: every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _info(row: RowMapping) -> ProviderKeyInfo:
    return ProviderKeyInfo(row["tenant_id"], row["provider"], row["fingerprint"],
                           row["master_key_id"], _utc(row["created_at"]),
                           _utc(row["updated_at"]))
