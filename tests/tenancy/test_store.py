"""The tenant store contract, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from turnout.tenancy import keys
from turnout.tenancy.policy import NO_POLICY, Policy
from turnout.tenancy.records import KeyRecord, TenantConflict
from turnout.tenancy.sql import SqlTenantStore
from turnout.tenancy.tables import metadata


def record(tenant_id: str, name: str = "ci", aliases: frozenset[str] | None = None,
           expires_at: datetime | None = None) -> KeyRecord:
    minted = keys.mint()
    return KeyRecord(minted.key_id, tenant_id, name, minted.digest,
                     datetime.now(UTC).replace(microsecond=0), expires_at, None, aliases)


async def test_tenants_round_trip(store: SqlTenantStore) -> None:
    acme = await store.create_tenant("acme", "Acme Corp")
    await store.create_tenant("beta", "Beta")
    with pytest.raises(TenantConflict):
        await store.create_tenant("acme", "again")
    assert await store.get_tenant("acme") == acme
    assert acme.created_at.tzinfo is not None
    assert [t.id for t in await store.list_tenants()] == ["acme", "beta"]
    assert await store.get_tenant("nobody") is None
    disabled = await store.set_tenant_disabled("acme", True)
    assert disabled is not None and disabled.disabled_at is not None
    enabled = await store.set_tenant_disabled("acme", False)
    assert enabled is not None and enabled.disabled_at is None


async def test_a_time_with_an_offset_reads_back_as_the_same_instant(
        store: SqlTenantStore) -> None:
    # SQLite keeps no offset: 10:00+05:00 once read back as 10:00Z, five hours late.
    await store.create_tenant("acme", "Acme")
    expires = datetime(2030, 1, 1, 10, tzinfo=timezone(timedelta(hours=5)))
    added = await store.add_key(record("acme", expires_at=expires))
    read = await store.get_key(added.id)
    assert read is not None and read.expires_at == expires
    assert read.expires_at.utcoffset() == timedelta(0)


async def test_keys_round_trip_and_revoke_once(store: SqlTenantStore) -> None:
    await store.create_tenant("acme", "Acme")
    await store.create_tenant("beta", "Beta")
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    first = await store.add_key(record("acme", "web", frozenset({"fast", "smart"}), expires))
    second = await store.add_key(record("acme", "batch"))
    other = await store.add_key(record("beta"))
    assert await store.get_key(first.id) == first
    assert {k.id for k in await store.list_keys("acme")} == {first.id, second.id}
    assert [k.id for k in await store.list_keys("beta")] == [other.id]
    at = datetime.now(UTC).replace(microsecond=0)
    revoked = await store.revoke_key(first.id, at)
    assert revoked is not None and revoked.revoked_at == at and not revoked.usable(at)
    again = await store.revoke_key(first.id, at + timedelta(hours=1))
    assert again is not None and again.revoked_at == at  # the first revocation stands
    assert await store.revoke_key("a" * 16, at) is None


@pytest.mark.parametrize("hostile", ["' OR '1'='1", "acme'; DROP TABLE turnout_tenants; --",
                                     "../../etc/passwd", "acme\x00", "%", "_"])
async def test_hostile_identifiers_find_nothing_and_change_nothing(
        store: SqlTenantStore, hostile: str) -> None:
    await store.create_tenant("acme", "Acme")
    key = await store.add_key(record("acme"))
    assert await store.get_tenant(hostile) is None
    assert await store.get_key(hostile) is None
    assert await store.list_keys(hostile) == []
    assert await store.revoke_key(hostile, datetime.now(UTC)) is None
    assert [t.id for t in await store.list_tenants()] == ["acme"]
    assert await store.get_key(key.id) == key


async def test_the_migrations_build_exactly_the_tables(store: SqlTenantStore) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return [d for d in compare_metadata(context, metadata)
                if not (d[0] == "remove_table" and d[1].name == "turnout_alembic_version")]

    async with store._engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_policies_round_trip_on_tenants_and_keys(store: SqlTenantStore) -> None:
    await store.create_tenant("acme", "Acme")
    policy = Policy.model_validate({
        "limits": {"rpm": 60, "tpm": 10_000, "concurrency": 3},
        "budgets": [{"period": "day", "usd": 2.5}, {"period": "total", "tokens": 9_000,
                                                     "hard": False, "alerts": [0.9]}]})
    tenant = await store.set_tenant_policy("acme", policy)
    assert tenant is not None and tenant.policy == policy
    assert (await store.get_tenant("acme")) == tenant
    key = await store.add_key(record("acme"))
    assert (await store.get_key(key.id)) == key and key.policy == NO_POLICY
    changed = await store.set_key_policy(key.id, policy)
    assert changed is not None and changed.policy == policy
    cleared = await store.set_key_policy(key.id, NO_POLICY)
    assert cleared is not None and cleared.policy == NO_POLICY
    assert await store.set_key_policy("nope\x00", policy) is None
    assert await store.set_tenant_policy("missing", policy) is None
