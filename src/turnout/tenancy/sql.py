"""`TenantStore` on SQLAlchemy (async): SQLite through aiosqlite by default, PostgreSQL
through asyncpg for several replicas. Every statement is built with bound parameters, so
no identifier a caller sends can change a query."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from turnout.tenancy.migrate import upgrade
from turnout.tenancy.policy import Policy, parse_policy
from turnout.tenancy.records import TENANT_ID, KeyRecord, Tenant, TenantConflict
from turnout.tenancy.tables import tenants, virtual_keys

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
                  "postgres": "postgresql+asyncpg"}


def _async_url(url: str) -> str:
    """`sqlite:///turnout.db` or `postgresql://host/db` with the async driver named."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    return f"{_ASYNC_DRIVERS.get(scheme, scheme)}://{rest}"


class SqlTenantStore:
    """Tenants and keys in a SQL database; `open` migrates it to the current schema."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The database engine, for the other stores that live in the same database
        (the spend ledger, tenants' provider keys)."""
        return self._engine

    @classmethod
    async def open(cls, url: str) -> SqlTenantStore:
        engine = create_async_engine(_async_url(url))
        await upgrade(engine)
        return cls(engine)

    @staticmethod
    def driver_url(url: str) -> str:
        """`url` with its async driver named (`sqlite+aiosqlite://`, `postgresql+asyncpg://`)."""
        return _async_url(url)

    async def close(self) -> None:
        await self._engine.dispose()

    async def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        if not TENANT_ID.fullmatch(tenant_id) or not _storable(name):
            raise ValueError("a tenant id is a lowercase slug; names hold no NUL character")
        tenant = Tenant(tenant_id, name, _now())
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(tenants).values(
                    id=tenant.id, name=tenant.name, created_at=tenant.created_at))
        except IntegrityError:
            raise TenantConflict(tenant_id) from None
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        if not _storable(tenant_id):
            return None
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
        return None if row is None else _tenant(row._mapping)

    async def list_tenants(self) -> list[Tenant]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(tenants).order_by(tenants.c.id))
        return [_tenant(row._mapping) for row in rows]

    async def set_tenant_disabled(self, tenant_id: str, disabled: bool) -> Tenant | None:
        if not _storable(tenant_id):
            return None
        async with self._engine.begin() as conn:
            await conn.execute(update(tenants).where(tenants.c.id == tenant_id)
                               .values(disabled_at=_now() if disabled else None))
        return await self.get_tenant(tenant_id)

    async def set_tenant_policy(self, tenant_id: str, policy: Policy) -> Tenant | None:
        if not _storable(tenant_id):
            return None
        async with self._engine.begin() as conn:
            await conn.execute(update(tenants).where(tenants.c.id == tenant_id)
                               .values(policy=policy.stored()))
        return await self.get_tenant(tenant_id)

    async def add_key(self, record: KeyRecord) -> KeyRecord:
        aliases = sorted(record.aliases) if record.aliases is not None else None
        async with self._engine.begin() as conn:
            await conn.execute(insert(virtual_keys).values(
                id=record.id, tenant_id=record.tenant_id, name=record.name,
                digest=record.digest, created_at=_in_utc(record.created_at),
                expires_at=_in_utc(record.expires_at), revoked_at=_in_utc(record.revoked_at),
                aliases=aliases,
                policy=record.policy.stored()))
        return record

    async def get_key(self, key_id: str) -> KeyRecord | None:
        if not _storable(key_id):
            return None
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(virtual_keys).where(virtual_keys.c.id == key_id))).first()
        return None if row is None else _key(row._mapping)

    async def list_keys(self, tenant_id: str) -> list[KeyRecord]:
        if not _storable(tenant_id):
            return []
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(virtual_keys)
                                      .where(virtual_keys.c.tenant_id == tenant_id)
                                      .order_by(virtual_keys.c.created_at, virtual_keys.c.id))
        return [_key(row._mapping) for row in rows]

    async def revoke_key(self, key_id: str, at: datetime) -> KeyRecord | None:
        if not _storable(key_id):
            return None
        async with self._engine.begin() as conn:
            await conn.execute(update(virtual_keys)
                               .where(virtual_keys.c.id == key_id,
                                      virtual_keys.c.revoked_at.is_(None))
                               .values(revoked_at=at))
        return await self.get_key(key_id)

    async def set_key_policy(self, key_id: str, policy: Policy) -> KeyRecord | None:
        if not _storable(key_id):
            return None
        async with self._engine.begin() as conn:
            await conn.execute(update(virtual_keys).where(virtual_keys.c.id == key_id)
                               .values(policy=policy.stored()))
        return await self.get_key(key_id)


def _storable(value: str) -> bool:
    # PostgreSQL text cannot hold NUL: such an identifier names nothing (and must not
    # become a driver error the caller sees as a 500).
    return "\x00" not in value


def _now() -> datetime:
    return datetime.now(UTC)


def _in_utc(value: datetime | None) -> datetime | None:
    # SQLite drops the offset when it stores a time: 10:00+05:00 would read back as 10:00Z.
    return None if value is None or value.tzinfo is None else value.astimezone(UTC)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite keeps no time zone: every stored time is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _tenant(row: RowMapping) -> Tenant:
    created = _utc(row["created_at"])
    assert created is not None
    return Tenant(row["id"], row["name"], created, _utc(row["disabled_at"]),
                  parse_policy(row["policy"]))


def _key(row: RowMapping) -> KeyRecord:
    created = _utc(row["created_at"])
    assert created is not None
    aliases = row["aliases"]
    return KeyRecord(row["id"], row["tenant_id"], row["name"], bytes(row["digest"]), created,
                     _utc(row["expires_at"]), _utc(row["revoked_at"]),
                     frozenset(aliases) if aliases is not None else None,
                     parse_policy(row["policy"]))
