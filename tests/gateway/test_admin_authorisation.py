"""The admin API's authorisation matrix, over every operation the served OpenAPI document
describes (so an endpoint added later is covered when it is described): each caller
(no key, wrong, revoked, expired, another tenant's, the tenant's own, the admin key) gets
exactly the status its access allows, and a refused call changes nothing. Then hostile
identifiers and body strings (SQL injection, path traversal, NUL, very long, lookalike
unicode): never a 5xx, never another tenant's data, and the tables intact. On SQLite and
on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from _gw_admin import ADMIN_KEY, postgres_database, serve_admin
from _gw_harness import Gateway
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from yarl import URL

from turnout.tenancy.sql import SqlTenantStore
from turnout.tenancy.tables import metadata

CALLERS = ("none", "wrong", "revoked", "expired", "other_tenant", "own", "admin")
HOSTILE = ["' OR 1=1 --", '"; DROP TABLE turnout_tenants; --', "../", "%2e%2e%2f", "..%2f",
           "../../../etc/passwd", "acme/../beta", "\x00", "acme\x00", "a" * 2000,
           "\u0430cme", "ACME", "acme ", "\uff41\uff43\uff4d\uff45", "acme\u200b", "*", "%"]
"""`\u0430cme` starts with a Cyrillic a; `\uff41...` is full-width `acme`."""


@dataclass
class World:
    """Two tenants and their keys, behind a running gateway."""

    gw: Gateway
    database_url: str
    keys: dict[str, dict[str, Any]]
    """Created keys by role: own, other_tenant, revoked, expired, target (acme's)."""

    @property
    def tokens(self) -> dict[str, str | None]:
        return {"none": None, "wrong": "tk_" + "a" * 16 + "_" + "A" * 43,
                "revoked": self.keys["revoked"]["key"], "expired": self.keys["expired"]["key"],
                "other_tenant": self.keys["other_tenant"]["key"],
                "own": self.keys["own"]["key"], "admin": ADMIN_KEY}

    async def call(self, method: str, path: str, token: str | None, body: Any = None, *,
                   header: str = "bearer", raw: bool = False) -> tuple[int, Any]:
        """`path` below `/admin/v1`, sent as it is when `raw` (no normalisation)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers.update({"Authorization": f"Bearer {token}"} if header == "bearer"
                           else {"x-api-key": token})
        url = URL(f"{self.gw.url}/admin/v1{path}", encoded=raw)
        data = orjson.dumps(body) if body is not None else None
        async with self.gw.http.request(method, url, data=data, headers=headers) as reply:
            assert reply.status < 500, (method, path, reply.status, await reply.text())
            assert reply.content_type == "application/json", (method, path, reply.status)
            return reply.status, orjson.loads(await reply.read())

    def shows_beta(self, body: Any) -> bool:
        """Whether an answer holds any of tenant beta's data (not merely the word, which
        a 404 may echo from the path it was given)."""
        text = orjson.dumps(body).decode()
        return any(mark in text for mark in ('"id":"beta"', '"tenant_id":"beta"', '"Beta"',
                                             self.keys["other_tenant"]["id"]))

    async def document(self) -> dict[str, Any]:
        status, document = await self.call("GET", "/openapi.json", None)
        assert status == 200
        return document  # type: ignore[no-any-return]


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'tenancy.db'}"
        else:
            url = await stack.enter_async_context(postgres_database())
        gw = await serve_admin(url, stack)
        world = World(gw, url, {})
        for tenant in ("acme", "beta"):
            assert (await world.call("POST", "/tenants", ADMIN_KEY,
                                     {"id": tenant, "name": tenant.title()}))[0] == 201
        for role, tenant, extra in (("own", "acme", {}), ("other_tenant", "beta", {}),
                                    ("revoked", "acme", {}), ("target", "acme", {}),
                                    ("expired", "acme", {"expires_at": "2020-01-01T00:00:00Z"})):
            status, world.keys[role] = await world.call(
                "POST", f"/tenants/{tenant}/keys", ADMIN_KEY, {"name": role, **extra})
            assert status == 201
        revoked = world.keys["revoked"]["id"]
        assert (await world.call("POST", f"/keys/{revoked}/revoke", ADMIN_KEY))[0] == 200
        for tenant in ("acme", "beta"):  # each tenant's own provider key
            status, _ = await world.call("PUT", f"/tenants/{tenant}/provider-keys/sim",
                                         ADMIN_KEY, {"api_key": f"sk-{tenant}-0123456789"})
            assert status == 201
        yield world


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    access: str
    params: tuple[str, ...]
    example: Any
    success: int

    def path(self, values: dict[str, str]) -> str:
        path = self.template.removeprefix("/admin/v1")
        for name in self.params:
            path = path.replace(f"{{{name}}}", values[name])
        return path


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for template, item in document["paths"].items():
        for method, op in item.items():
            params = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            assert "requestBody" not in op or "example" in body, (
                f"{op['operationId']}: give its AdminRoute a body_example")
            success = min(int(s) for s in op["responses"] if s.startswith("2"))
            found.append(Operation(method.upper(), template, op["x-turnout-access"], params,
                                   body.get("example"), success))
    return found


def acme_resources(world: World, params: tuple[str, ...]) -> dict[str, str]:
    """Values for path parameters naming acme's resources."""
    known = {"tenant_id": "acme", "key_id": world.keys["target"]["id"], "provider": "sim"}
    missing = [p for p in params if p not in known]
    assert not missing, f"add a value for path parameter(s) {missing} to acme_resources"
    return known


def expected(op: Operation, caller: str) -> int:
    if op.access == "public" or caller == "admin":
        return op.success
    if caller in ("none", "wrong", "revoked", "expired"):
        return 401
    if op.access == "admin":
        return 403
    assert op.access == "tenant", op
    return 404 if caller == "other_tenant" and op.params else op.success


async def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every tenancy table (read straight from the database)."""
    engine = create_async_engine(SqlTenantStore.driver_url(url))
    try:
        async with engine.connect() as conn:
            return {table.name: sorted((tuple(row) for row in await conn.execute(select(table))),
                                       key=repr)
                    for table in metadata.sorted_tables}
    finally:
        await engine.dispose()


async def test_every_operation_answers_each_caller_as_its_access_allows(world: World) -> None:
    ops = operations(await world.document())
    assert len(ops) >= 11
    tokens = world.tokens
    before = await snapshot(world.database_url)
    for op in ops:
        path = op.path(acme_resources(world, op.params))
        for caller in CALLERS[:-1]:  # every caller but the admin changes nothing
            for header in ("bearer", "x-api-key"):
                status, body = await world.call(op.method, path, tokens[caller], op.example,
                                                header=header)
                assert status == expected(op, caller), (op, caller, header, body)
                if status >= 400:
                    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
                assert op.access == "public" or not world.shows_beta(body), (op, caller)
    assert await snapshot(world.database_url) == before, "a refused call changed something"
    for op in ops:  # the admin last, in document order (the revocation of `target` too)
        path = op.path(acme_resources(world, op.params))
        status, body = await world.call(op.method, path, ADMIN_KEY, op.example)
        assert status == expected(op, "admin"), (op, body)


async def test_hostile_identifiers_find_nothing_and_break_nothing(world: World) -> None:
    ops = operations(await world.document())
    tokens = world.tokens
    before = await snapshot(world.database_url)
    for op in (o for o in ops if o.params):
        for name in op.params:
            for hostile in HOSTILE:
                values = {**acme_resources(world, op.params), name: quote(hostile, safe="")}
                for caller in ("admin", "own"):
                    status, body = await world.call(op.method, op.path(values),
                                                    tokens[caller], op.example)
                    assert status in (403, 404), (op, hostile, caller, body)
                    assert not world.shows_beta(body), (op, hostile, body)
                if hostile.isascii() and hostile.isprintable() and " " not in hostile and (
                        len(hostile) < 100):  # what may stand in a request line unencoded
                    values[name] = hostile  # unencoded: `../` reaches the server as it is
                    status, body = await world.call(op.method, op.path(values),
                                                    tokens["own"], op.example, raw=True)
                    assert status in (403, 404), (op, hostile, body)
                    assert not world.shows_beta(body), (op, hostile, body)
    assert await snapshot(world.database_url) == before
    await hostile_bodies(world, ops)


async def hostile_bodies(world: World, ops: list[Operation]) -> None:
    """Every string in every body example, replaced by each hostile string: an answer
    that accepts one stores it as it was given (a name is only a name)."""
    for op in (o for o in ops if isinstance(o.example, dict) and o.access == "admin"):
        for field, value in op.example.items():
            if not isinstance(value, str | list):
                continue
            for hostile in HOSTILE:
                body = {**op.example, field: [hostile] if isinstance(value, list) else hostile}
                path = op.path(acme_resources(world, op.params))
                status, reply = await world.call(op.method, path, ADMIN_KEY, body)
                assert status in (200, 201, 400, 409), (op, field, hostile, reply)
                if status < 300 and field in reply:
                    assert reply[field] == body[field]
                assert not (status == 201 and field == "id"), f"id {hostile!r} accepted"
    rows = await snapshot(world.database_url)  # every table is still there, and its rows
    assert {"acme", "beta"} <= {row[0] for row in rows["turnout_tenants"]}
    assert len(rows["turnout_virtual_keys"]) >= 5
