"""Tenants through the gateway: the admin API mints keys, the official SDKs call with
them, scopes, revocation and expiry hold, and no key can see another tenant's data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from _gw_errors import error_of, post, valid_body
from _gw_harness import Gateway, base_config, compile_data, serve

from turnout.sim.server import RunningSimulator

ADMIN_KEY = "admin-" + "k" * 40


@dataclass
class Tenancy:
    gw: Gateway
    admin: dict[str, str]

    async def call(self, method: str, path: str, key: str | None = None,
                   body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        data = orjson.dumps(body) if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.gw.http.request(method, f"{self.gw.url}/admin/v1{path}",
                                        data=data, headers=headers) as response:
            assert response.content_type == "application/json"
            return response.status, orjson.loads(await response.read())

    async def tenant(self, tenant_id: str) -> None:
        status, body = await self.call("POST", "/tenants", ADMIN_KEY,
                                       {"id": tenant_id, "name": tenant_id.title()})
        assert status == 201, body

    async def key(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        status, body = await self.call("POST", f"/tenants/{tenant_id}/keys", ADMIN_KEY,
                                       {"name": "ci", **fields})
        assert status == 201, body
        return body  # type: ignore[no-any-return]


def tenancy_config(sims: dict[str, RunningSimulator], db: Path,
                   cache_s: float = 1.0) -> dict[str, Any]:
    data = base_config(sims)
    data["tenancy"] = {"database": f"sqlite:///{db}", "admin_key": {"env": "ADMIN_KEY"},
                       "key_cache_s": cache_s}
    return data


@pytest.fixture
async def tenancy(sims: dict[str, RunningSimulator], tmp_path: Path
                  ) -> AsyncIterator[Tenancy]:
    async with AsyncExitStack() as stack:
        runtime = compile_data(tenancy_config(sims, tmp_path / "t.db"),
                               {"ADMIN_KEY": ADMIN_KEY})
        yield Tenancy(await serve(runtime, stack), {"Authorization": f"Bearer {ADMIN_KEY}"})


async def test_a_tenant_key_calls_through_the_sdk(tenancy: Tenancy) -> None:
    await tenancy.tenant("acme")
    created = await tenancy.key("acme")
    token = created["key"]
    assert token.startswith("tk_") and created["tenant_id"] == "acme"
    client = openai.AsyncOpenAI(base_url=f"{tenancy.gw.url}/v1", api_key=token, max_retries=0)
    try:
        answer = await client.chat.completions.create(
            model="oa", messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()
    assert "You said: hi" in (answer.choices[0].message.content or "")
    # The key is shown once: never again, in any listing.
    _, listed = await tenancy.call("GET", "/tenants/acme/keys", ADMIN_KEY)
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    assert token not in orjson.dumps(listed).decode()
    _, one = await tenancy.call("GET", f"/keys/{created['id']}", ADMIN_KEY)
    assert "key" not in one and token.split("_")[-1] not in orjson.dumps(one).decode()


async def test_a_scoped_key_reaches_only_its_aliases(tenancy: Tenancy) -> None:
    await tenancy.tenant("acme")
    token = (await tenancy.key("acme", aliases=["oa"]))["key"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await post(tenancy.gw, "openai", valid_body("openai", "oa"), auth)).status == 200
    reply = await post(tenancy.gw, "openai", valid_body("openai", "an"), auth)
    assert error_of("openai", reply, 404)["code"] == "model_not_found"
    reply = await post(tenancy.gw, "anthropic", valid_body("anthropic", "an"),
                       {"x-api-key": token})
    error_of("anthropic", reply, 404)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_revoked_key_is_refused_at_once(tenancy: Tenancy, stream: bool) -> None:
    await tenancy.tenant("acme")
    created = await tenancy.key("acme")
    auth = {"Authorization": f"Bearer {created['key']}"}
    body = valid_body("openai", stream=stream)
    assert (await post_any(tenancy.gw, body, auth)) == 200
    status, revoked = await tenancy.call("POST", f"/keys/{created['id']}/revoke", ADMIN_KEY)
    assert status == 200 and revoked["revoked_at"] is not None
    reply = await post(tenancy.gw, "openai", body, auth)
    assert "revoked" in error_of("openai", reply, 401)["message"]


async def post_any(gw: Gateway, body: dict[str, Any], headers: dict[str, str]) -> int:
    async with gw.http.post(f"{gw.url}/v1/chat/completions", data=orjson.dumps(body),
                            headers={"Content-Type": "application/json", **headers}) as r:
        await r.read()
        return r.status


async def test_an_expired_key_and_a_disabled_tenant_are_refused(tenancy: Tenancy) -> None:
    await tenancy.tenant("acme")
    expired = (await tenancy.key("acme", expires_at="2020-01-01T00:00:00Z"))["key"]
    reply = await post(tenancy.gw, "openai", valid_body("openai"),
                       {"Authorization": f"Bearer {expired}"})
    assert "expired" in error_of("openai", reply, 401)["message"]
    live = (await tenancy.key("acme"))["key"]
    status, _ = await tenancy.call("PATCH", "/tenants/acme", ADMIN_KEY, {"disabled": True})
    assert status == 200
    reply = await post(tenancy.gw, "openai", valid_body("openai"),
                       {"Authorization": f"Bearer {live}"})
    error_of("openai", reply, 403)


async def test_a_forged_key_with_a_real_id_is_refused(tenancy: Tenancy) -> None:
    await tenancy.tenant("acme")
    real = (await tenancy.key("acme"))["key"]
    forged = real[:-5] + ("AAAAA" if not real.endswith("AAAAA") else "BBBBB")
    reply = await post(tenancy.gw, "openai", valid_body("openai"),
                       {"Authorization": f"Bearer {forged}"})
    assert "revoked" not in error_of("openai", reply, 401)["message"]


HOSTILE = ["..%2F..%2Fetc%2Fpasswd", "%27%20OR%20%271%27%3D%271", "acme%00", "ACME",
           "a" * 64, "%2E%2E"]


async def test_authorisation_matrix(tenancy: Tenancy) -> None:
    await tenancy.tenant("acme")
    await tenancy.tenant("beta")
    own = await tenancy.key("acme")
    other = await tenancy.key("beta")
    revoked = await tenancy.key("acme")
    await tenancy.call("POST", f"/keys/{revoked['id']}/revoke", ADMIN_KEY)
    expired = await tenancy.key("acme", expires_at="2020-01-01T00:00:00Z")
    callers: dict[str, str | None] = {
        "none": None, "wrong": "wrong-key", "revoked": revoked["key"],
        "expired": expired["key"], "other_tenant": other["key"], "own": own["key"],
        "admin": ADMIN_KEY}
    reads = [("GET", "/tenants/acme"), ("GET", "/tenants/acme/keys"),
             ("GET", f"/keys/{own['id']}")]
    writes = [("POST", "/tenants", {"id": "gamma", "name": "G"}),
              ("PATCH", "/tenants/acme", {"disabled": False}),
              ("POST", "/tenants/acme/keys", {"name": "x"}),
              ("POST", f"/keys/{own['id']}/revoke", None)]
    expect_read = {"none": 401, "wrong": 401, "revoked": 401, "expired": 401,
                   "other_tenant": 404, "own": 200, "admin": 200}
    expect_write = {**expect_read, "other_tenant": 403, "own": 403}
    expect_write["other_tenant"] = 403
    for name, key in callers.items():
        for method, path in reads:
            status, body = await tenancy.call(method, path, key)
            assert status == expect_read[name], (name, path, body)
        status, _ = await tenancy.call("GET", "/tenants", key)
        assert status == (200 if name == "admin" else expect_write[name]), name
    for name, key in callers.items():
        if name == "admin":
            continue
        for method, path, body in writes:
            status, _ = await tenancy.call(method, path, key, body)
            assert status == expect_write[name], (name, path)
    for method, path, body in writes:  # the admin last: the revocation comes at the end
        status, reply = await tenancy.call(method, path, ADMIN_KEY, body)
        assert status in (200, 201), (path, reply)


async def test_hostile_identifiers_are_not_found(tenancy: Tenancy) -> None:
    await tenancy.tenant("acme")
    for hostile in HOSTILE:
        for path in (f"/tenants/{hostile}", f"/tenants/{hostile}/keys", f"/keys/{hostile}"):
            status, body = await tenancy.call("GET", path, ADMIN_KEY)
            assert status == 404, (path, body)
        status, _ = await tenancy.call("POST", f"/keys/{hostile}/revoke", ADMIN_KEY)
        assert status == 404
    for bad in ({"id": "../x", "name": "x"}, {"id": "acme'--", "name": "x"},
                {"id": "ok", "name": "x", "extra": 1}, {"id": "ok"}, [], "x",
                {"id": "ok", "name": "nul\u0000"}, {"id": "ok", "name": ""}):
        status, body = await tenancy.call("POST", "/tenants", ADMIN_KEY, bad)
        assert status == 400, (bad, body)
    status, _ = await tenancy.call("POST", "/tenants/acme/keys", ADMIN_KEY,
                                   {"name": "k", "aliases": ["oa\u0000"]})
    assert status == 400
    _, listed = await tenancy.call("GET", "/tenants", ADMIN_KEY)
    assert [t["id"] for t in listed["data"]] == ["acme"]


async def test_a_revocation_through_one_replica_holds_on_the_other(
        sims: dict[str, RunningSimulator], tmp_path: Path) -> None:
    data = tenancy_config(sims, tmp_path / "shared.db", cache_s=0.2)
    async with AsyncExitStack() as stack:
        first = Tenancy(await serve(compile_data(data, {"ADMIN_KEY": ADMIN_KEY}), stack), {})
        second = await serve(compile_data(data, {"ADMIN_KEY": ADMIN_KEY}), stack)
        await first.tenant("acme")
        created = await first.key("acme")
        auth = {"Authorization": f"Bearer {created['key']}"}
        assert await post_any(second, valid_body("openai"), auth) == 200
        await first.call("POST", f"/keys/{created['id']}/revoke", ADMIN_KEY)
        async with asyncio.timeout(5):
            while await post_any(second, valid_body("openai"), auth) != 401:  # noqa: ASYNC110
                await asyncio.sleep(0.05)


async def test_a_scoped_key_lists_and_finds_only_its_aliases(tenancy: Tenancy) -> None:
    await tenancy.tenant("acme")
    token = (await tenancy.key("acme", aliases=["oa"]))["key"]
    client = openai.AsyncOpenAI(base_url=f"{tenancy.gw.url}/v1", api_key=token, max_retries=0)
    try:
        assert [m.id async for m in client.models.list()] == ["oa"]
        assert (await client.models.retrieve("oa")).id == "oa"
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("an")
    finally:
        await client.close()
    async with tenancy.gw.http.get(f"{tenancy.gw.url}/v1/models",
                                   headers={"Authorization": f"Bearer {ADMIN_KEY}x"}) as r:
        assert r.status == 401
