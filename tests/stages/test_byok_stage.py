"""The bring-your-own-key stage: whose key an attempt carries, the per-(tenant, provider)
cache in front of the store, and its absence from configs without master keys."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from turnout.config import RuntimeConfig, compile_config, validate_config
from turnout.config.runtime import MasterKey
from turnout.core.errors import InternalError
from turnout.core.parts import TextPart
from turnout.core.request import ChatRequest, Message
from turnout.core.scrub import REDACTED
from turnout.engine.context import CallContext, Identity
from turnout.engine.pipeline import Call, Pipeline
from turnout.engine.plan import Candidate
from turnout.stages import config_stages
from turnout.stages.byok import BringYourOwnKey
from turnout.stages.ledger import Ledger
from turnout.stages.resources import StageResources
from turnout.tenancy.provider_keys import SqlProviderKeyStore
from turnout.tenancy.sealing import Sealer

PLATFORM_KEY = "Zq9-openai-platform-0123456789abcdef"
ACME_KEY = "acme-own-Qx7Lm2Vb9Nc4Zr8Tp1Wd"  # not key-shaped: only the stage knows it
MASTER = base64.urlsafe_b64encode(os.urandom(32)).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def runtime_for(db: Path, *, master: bool = True, **tenancy: Any) -> RuntimeConfig:
    section: dict[str, Any] = {"database": f"sqlite:///{db}", "key_cache_s": 5, **tenancy}
    if master:
        section["master_keys"] = [{"id": "k1", "key": {"env": "MK"}}]
    data = {"local": False, "tenancy": section,
            "providers": {"oa": {"kind": "openai_compatible", "base_url": "http://oa.test/v1",
                                 "api_key": {"env": "PK"}},
                          "an": {"kind": "anthropic", "base_url": "http://an.test",
                                 "api_key": {"env": "PK"}}},
            "routes": {"r": {"targets": [{"provider": "oa", "model": "m"},
                                         {"provider": "an", "model": "claude-haiku-4-5"}]}}}
    return compile_config(validate_config(data), {"PK": PLATFORM_KEY, "MK": MASTER})


class Setup:
    def __init__(self, runtime: RuntimeConfig, resources: StageResources, clock: Clock,
                 stage: BringYourOwnKey, keys: SqlProviderKeyStore) -> None:
        self.runtime, self.resources, self.clock = runtime, resources, clock
        self.stage, self.keys = stage, keys
        self.reads = 0

    def candidate(self, provider: str = "oa") -> Candidate:
        route = self.runtime.routes["r"]
        (deployment,) = [d for d in route.deployments if d.provider == provider]
        return Candidate(deployment, route, 0)

    async def attempt(self, tenant: str | None, provider: str = "oa") -> Candidate:
        ctx = CallContext()
        if tenant is not None:
            ctx.identity = Identity(tenant, "k" * 16)
        call = Call(ChatRequest(model="r", messages=[Message("user", [TextPart("hi")])]), ctx)
        return await self.stage.on_attempt(call, self.candidate(provider))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    runtime = runtime_for(tmp_path / "t.db")
    assert runtime.tenancy is not None
    clock = Clock()
    resources = StageResources(clock)
    store = await resources.tenant_store(runtime.tenancy.database_url)
    for tenant in ("acme", "globex"):
        await store.create_tenant(tenant, tenant)
    engine = await resources.sql_engine(runtime.tenancy.database_url)
    keys = SqlProviderKeyStore(engine, Sealer(runtime.tenancy.master_keys))
    await keys.put("acme", "oa", ACME_KEY)
    stage = BringYourOwnKey(runtime.tenancy, resources, clock, max_entries=3)
    found = Setup(runtime, resources, clock, stage, keys)

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "turnout_provider_keys" in statement:
            found.reads += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    yield found
    await resources.aclose()


async def test_a_tenant_with_a_key_sends_its_own_and_nothing_else_changes(
        setup: Setup) -> None:
    original = setup.candidate("oa")
    swapped = await setup.attempt("acme", "oa")
    got, was = swapped.deployment, original.deployment
    assert got.target.api_key == ACME_KEY and was.target.api_key == PLATFORM_KEY
    assert (got.id, got.provider, got.dialect, got.target.base_url, got.target.model,
            got.target.headers, got.info) == (
            was.id, was.provider, was.dialect, was.target.base_url, was.target.model,
            was.target.headers, was.info)
    assert swapped.route is original.route
    # Its scrubber knows the tenant's key, and still every configured secret.
    text = f"bad key {ACME_KEY} (platform {PLATFORM_KEY}, master {MASTER})"
    assert got.scrubber.scrub(text) == f"bad key {REDACTED} (platform {REDACTED}, master " \
                                      f"{REDACTED})"
    # Reprs (what a stray log line or a traceback would show) hold no key.
    assert ACME_KEY not in repr(got) and PLATFORM_KEY not in repr(was)
    assert ACME_KEY not in repr(setup.stage._cache)


async def test_everyone_else_keeps_the_platform_key(setup: Setup) -> None:
    for tenant, provider in (("globex", "oa"), ("acme", "an"), (None, "oa")):
        candidate = await setup.attempt(tenant, provider)
        assert candidate.deployment.target.api_key == PLATFORM_KEY, (tenant, provider)


async def test_a_provider_outside_byok_providers_is_never_looked_up(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path / "t.db", byok_providers=["an"])
    assert runtime.tenancy is not None
    resources = StageResources(Clock())
    try:
        store = await resources.tenant_store(runtime.tenancy.database_url)
        await store.create_tenant("acme", "Acme")
        engine = await resources.sql_engine(runtime.tenancy.database_url)
        # Stored before `oa` was taken out of byok_providers: no longer used.
        await SqlProviderKeyStore(engine, Sealer(runtime.tenancy.master_keys)).put(
            "acme", "oa", ACME_KEY)
        stage = BringYourOwnKey(runtime.tenancy, resources)
        route = runtime.routes["r"]
        ctx = CallContext(identity=Identity("acme", "k" * 16))
        call = Call(ChatRequest(model="r", messages=[]), ctx)
        candidate = Candidate(route.deployments[0], route, 0)
        assert await stage.on_attempt(call, candidate) is candidate
    finally:
        await resources.aclose()


async def test_keys_and_their_absence_are_cached_for_key_cache_s(setup: Setup) -> None:
    await setup.attempt("acme")
    await setup.attempt("globex")
    assert setup.reads == 2
    for _ in range(5):
        assert (await setup.attempt("acme")).deployment.target.api_key == ACME_KEY
        assert (await setup.attempt("globex")).deployment.target.api_key == PLATFORM_KEY
    assert setup.reads == 2  # a dictionary lookup each
    await setup.keys.put("acme", "oa", ACME_KEY + "-rotated")
    await setup.keys.put("globex", "oa", "sk-globex-own-key-0123456789abcdef")
    setup.reads = 0
    assert (await setup.attempt("acme")).deployment.target.api_key == ACME_KEY  # cached
    setup.clock.now += 5.01
    assert (await setup.attempt("acme")).deployment.target.api_key == ACME_KEY + "-rotated"
    assert (await setup.attempt("globex")).deployment.target.api_key.startswith("sk-globex")
    await setup.keys.delete("acme", "oa")
    setup.clock.now += 5.01
    assert (await setup.attempt("acme")).deployment.target.api_key == PLATFORM_KEY


async def test_the_cache_is_bounded(setup: Setup) -> None:
    for i in range(10):
        await setup.attempt(f"tenant-{i}")
    assert len(setup.stage._cache) == 3


async def test_concurrent_misses_share_one_read(setup: Setup) -> None:
    results = await asyncio.gather(*(setup.attempt("acme") for _ in range(20)))
    assert {c.deployment.target.api_key for c in results} == {ACME_KEY}
    assert setup.reads == 1


async def test_a_key_that_cannot_be_opened_fails_the_attempt_clearly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = runtime_for(tmp_path / "t.db")
    assert runtime.tenancy is not None
    resources = StageResources(Clock())
    try:
        store = await resources.tenant_store(runtime.tenancy.database_url)
        await store.create_tenant("acme", "Acme")
        engine = await resources.sql_engine(runtime.tenancy.database_url)
        gone = Sealer([MasterKey("k0", os.urandom(32))])
        await SqlProviderKeyStore(engine, gone).put("acme", "oa", ACME_KEY)
        stage = BringYourOwnKey(runtime.tenancy, resources)
        route = runtime.routes["r"]
        call = Call(ChatRequest(model="r", messages=[]),
                    CallContext(identity=Identity("acme", "k" * 16)))
        caplog.set_level(logging.DEBUG)
        with pytest.raises(InternalError) as caught:
            await stage.on_attempt(call, Candidate(route.deployments[0], route, 0))
        assert caught.value.status == 500 and caught.value.origin == "gateway"
        assert "cannot be decrypted" in caught.value.message and "'oa'" in caught.value.message
        assert "k0" not in caught.value.message  # operators' business, in the log
        assert "'k0'" in caplog.text and "acme" in caplog.text
        assert ACME_KEY[:8] not in caplog.text
        # The other provider is unaffected.
        other = Candidate(route.deployments[1], route, 0)
        assert (await stage.on_attempt(call, other)).deployment.target.api_key == PLATFORM_KEY
    finally:
        await resources.aclose()


def test_only_configs_with_master_keys_have_the_stage(tmp_path: Path) -> None:
    resources = StageResources(Clock())
    without = config_stages(runtime_for(tmp_path / "t.db", master=False), resources)
    assert not any(isinstance(s, BringYourOwnKey) for s in without)
    # Only the spend ledger sees attempts.
    assert [type(s) for s in Pipeline(without).attempt] == [Ledger]
    with_keys = config_stages(runtime_for(tmp_path / "t.db"), resources)
    # BYOK first: the ledger journals the deployment really called.
    assert [type(s) for s in Pipeline(with_keys).attempt] == [BringYourOwnKey, Ledger]
