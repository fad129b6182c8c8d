"""The provider-key store on SQLite and PostgreSQL: only ciphertext at rest, upserts,
isolation between tenants and providers, and rotation by re-encrypting every row."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select, update

from turnout.config.runtime import MasterKey
from turnout.tenancy.provider_keys import SqlProviderKeyStore
from turnout.tenancy.sealing import Sealer, TamperedKey, UnknownMasterKey
from turnout.tenancy.sql import SqlTenantStore
from turnout.tenancy.tables import provider_keys

K1 = MasterKey("k1", os.urandom(32))
K2 = MasterKey("k2", os.urandom(32))
ACME_KEY = "sk-acme-0penAiKey-111122223333444455556666"
GLOBEX_KEY = "sk-globex-0penAiKey-777788889999000011112222"


async def keys(store: SqlTenantStore, *master: MasterKey) -> SqlProviderKeyStore:
    return SqlProviderKeyStore(store.engine, Sealer(master))


async def tenants(store: SqlTenantStore, *ids: str) -> None:
    for tenant_id in ids:
        await store.create_tenant(tenant_id, tenant_id.title())


async def raw_rows(store: SqlTenantStore) -> list[dict[str, object]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(provider_keys).order_by(
            provider_keys.c.tenant_id, provider_keys.c.provider))
    return [dict(row._mapping) for row in rows]


async def test_put_get_list_delete(store: SqlTenantStore) -> None:
    await tenants(store, "acme", "globex")
    vault = await keys(store, K1)
    info = await vault.put("acme", "openai", ACME_KEY)
    assert (info.tenant_id, info.provider, info.master_key_id) == ("acme", "openai", "k1")
    assert info.fingerprint == Sealer([K1]).fingerprint(ACME_KEY)
    assert info.created_at.tzinfo is not None and info.created_at == info.updated_at
    await vault.put("acme", "anthropic", "sk-ant-acme-aaaabbbbccccdddd")
    await vault.put("globex", "openai", GLOBEX_KEY)
    assert await vault.reveal("acme", "openai") == ACME_KEY
    assert await vault.reveal("globex", "openai") == GLOBEX_KEY
    assert await vault.reveal("acme", "gemini") is None
    assert await vault.reveal("nobody", "openai") is None
    assert [i.provider for i in await vault.list_keys("acme")] == ["anthropic", "openai"]
    assert [i.provider for i in await vault.list_keys("globex")] == ["openai"]
    assert await vault.delete("acme", "openai") is True
    assert await vault.delete("acme", "openai") is False
    assert await vault.reveal("acme", "openai") is None
    assert await vault.reveal("globex", "openai") == GLOBEX_KEY  # untouched


async def test_only_ciphertext_is_at_rest(store: SqlTenantStore) -> None:
    await tenants(store, "acme")
    await (await keys(store, K1)).put("acme", "openai", ACME_KEY)
    (row,) = await raw_rows(store)
    assert set(row) == {"tenant_id", "provider", "ciphertext", "master_key_id", "fingerprint",
                        "created_at", "updated_at"}  # no base URL, nothing else
    dumped = repr(row) + bytes(row["ciphertext"]).hex()  # type: ignore[arg-type]
    assert ACME_KEY not in dumped and ACME_KEY[:12] not in dumped
    assert ACME_KEY[:12].encode() not in bytes(row["ciphertext"])  # type: ignore[arg-type]


async def test_replacing_a_key_keeps_its_creation_time(store: SqlTenantStore) -> None:
    await tenants(store, "acme")
    vault = await keys(store, K1)
    first = await vault.put("acme", "openai", ACME_KEY)
    second = await vault.put("acme", "openai", ACME_KEY + "-rotated")
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    assert second.fingerprint != first.fingerprint
    assert await vault.reveal("acme", "openai") == ACME_KEY + "-rotated"
    assert len(await raw_rows(store)) == 1


async def test_a_row_copied_onto_another_tenant_does_not_open(store: SqlTenantStore) -> None:
    await tenants(store, "acme", "globex")
    vault = await keys(store, K1)
    await vault.put("acme", "openai", ACME_KEY)
    await vault.put("globex", "openai", GLOBEX_KEY)
    (acme, _) = await raw_rows(store)
    async with store.engine.begin() as conn:
        await conn.execute(update(provider_keys).where(provider_keys.c.tenant_id == "globex")
                           .values(ciphertext=acme["ciphertext"]))
    with pytest.raises(TamperedKey):
        await vault.reveal("globex", "openai")
    assert await vault.reveal("acme", "openai") == ACME_KEY


async def test_names_with_nul_match_nothing(store: SqlTenantStore) -> None:
    await tenants(store, "acme")
    vault = await keys(store, K1)
    assert await vault.reveal("acme\x00", "openai") is None
    assert await vault.get("acme", "open\x00ai") is None
    assert await vault.list_keys("a\x00") == []
    assert await vault.delete("acme", "\x00") is False
    with pytest.raises(ValueError):
        await vault.put("acme", "open\x00ai", ACME_KEY)


async def test_rotation_end_to_end(store: SqlTenantStore) -> None:
    await tenants(store, "acme", "globex")
    old = await keys(store, K1)
    await old.put("acme", "openai", ACME_KEY)
    await old.put("globex", "openai", GLOBEX_KEY)
    # k2 becomes current; k1 still opens what it sealed.
    rotating = await keys(store, K2, K1)
    assert await rotating.reveal("acme", "openai") == ACME_KEY
    await rotating.put("acme", "anthropic", "sk-ant-acme-aaaabbbbccccdddd")  # sealed by k2
    assert await rotating.count_by_master_key() == {"k1": 2, "k2": 1}
    report = await rotating.reencrypt_all()
    assert (report.current_id, report.reencrypted, report.already_current) == ("k2", 2, 1)
    assert report.unreadable == () and report.remaining == {}
    assert {i.master_key_id for i in await rotating.list_keys("acme")} == {"k2"}
    again = await rotating.reencrypt_all()  # idempotent
    assert (again.reencrypted, again.already_current) == (0, 3)
    # Fingerprints follow the current master key.
    (info,) = [i for i in await rotating.list_keys("acme") if i.provider == "openai"]
    assert info.fingerprint == Sealer([K2]).fingerprint(ACME_KEY)
    # k1 dropped: everything still opens.
    after = await keys(store, K2)
    assert await after.reveal("acme", "openai") == ACME_KEY
    assert await after.reveal("globex", "openai") == GLOBEX_KEY
    assert await after.reveal("acme", "anthropic") == "sk-ant-acme-aaaabbbbccccdddd"


async def test_reencrypting_reports_what_it_cannot_open(store: SqlTenantStore) -> None:
    await tenants(store, "acme", "globex")
    lost = MasterKey("k0", os.urandom(32))
    await (await keys(store, lost)).put("acme", "openai", ACME_KEY)
    await (await keys(store, K1)).put("globex", "openai", GLOBEX_KEY)
    vault = await keys(store, K2, K1)
    with pytest.raises(UnknownMasterKey, match="'k0'"):
        await vault.reveal("acme", "openai")
    report = await vault.reencrypt_all()
    assert report.reencrypted == 1  # the others are still done
    (bad,) = report.unreadable
    assert (bad.tenant_id, bad.provider, bad.master_key_id) == ("acme", "openai", "k0")
    assert bad.reason == "unknown master key"
    assert report.remaining == {"k0": 1}
    assert (await raw_rows(store))[0]["master_key_id"] == "k0"  # left as it was


async def test_a_key_stored_during_reencryption_is_not_overwritten(
        store: SqlTenantStore, monkeypatch: pytest.MonkeyPatch) -> None:
    await tenants(store, "acme")
    admin = await keys(store, K1)  # a replica still on the old config
    await admin.put("acme", "openai", ACME_KEY)
    vault = await keys(store, K2, K1)
    read_before = await vault._all_rows()
    await admin.put("acme", "openai", "sk-acme-brand-new-key-0000111122223333")

    async def stale() -> object:
        return read_before

    monkeypatch.setattr(vault, "_all_rows", stale)
    report = await vault.reencrypt_all()
    assert (report.reencrypted, report.changed_meanwhile) == (0, 1)
    assert report.remaining == {"k1": 1}  # the next run takes it
    assert await vault.reveal("acme", "openai") == "sk-acme-brand-new-key-0000111122223333"
    monkeypatch.undo()
    assert (await vault.reencrypt_all()).reencrypted == 1
    assert await vault.reveal("acme", "openai") == "sk-acme-brand-new-key-0000111122223333"
