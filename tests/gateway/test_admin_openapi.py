"""The served OpenAPI document: it describes every admin route the gateway registers (an
endpoint added without its `AdminRoute` fails here), in OpenAPI 3.1 with resolvable
references and only JSON Schema keywords, and the admin API's own errors, fallbacks
included, all have the one `Error` shape."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from _gw_admin import ADMIN_KEY, serve_admin
from _gw_harness import Gateway
from aiohttp import web

from turnout.gateway.admin import AdminApi
from turnout.gateway.admin_spec import PREFIX, TENANT_ID_PARAM, Access, AdminCaller, AdminRoute

NOT_JSON_SCHEMA = {"ge", "gt", "le", "lt", "multiple_of", "min_length", "max_length"}
"""pydantic constraint names that leak into a schema when a constraint cannot be placed
(e.g. after a validator in `Annotated`): JSON Schema tools silently ignore them."""


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with AsyncExitStack() as stack:
        yield await serve_admin(f"sqlite:///{tmp_path / 't.db'}", stack)


async def document(gw: Gateway) -> dict[str, Any]:
    async with gw.http.get(f"{gw.url}{PREFIX}/openapi.json") as reply:
        assert reply.status == 200 and reply.content_type == "application/json"
        return orjson.loads(await reply.read())  # type: ignore[no-any-return]


def admin_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route under the prefix, fallbacks aside."""
    found = set()
    for resource in app.router.resources():
        for route in resource:
            if route.method in ("*", "HEAD") or not resource.canonical.startswith(PREFIX):
                continue
            found.add((route.method, resource.canonical))
    return found


async def test_every_admin_route_is_described(gw: Gateway) -> None:
    described = {(method.upper(), path) for path, item in (await document(gw))["paths"].items()
                 for method in item}
    registered = admin_routes(gw.app)
    assert registered - described == set(), "describe these routes with an AdminRoute"
    assert described - registered == set()
    assert len(registered) >= 11


async def test_a_later_operation_on_a_path_joins_that_path(gw: Gateway) -> None:
    async def gone(http: web.Request, caller: AdminCaller) -> web.Response:
        return web.Response(status=204)

    settings = gw.runtime.tenancy
    assert settings is not None
    extra = AdminRoute("DELETE", "/tenants/{tenant_id}", gone, "deleteTenant", "Delete",
                       Access.ADMIN, {204: None}, params=(TENANT_ID_PARAM,))
    app = web.Application()
    app.router.add_routes(AdminApi(gw.engine, settings).routes([extra]))
    methods = [{route.method for route in resource} for resource in app.router.resources()
               if resource.canonical == f"{PREFIX}/tenants/{{tenant_id}}"]
    assert methods == [{"GET", "HEAD", "PATCH", "DELETE"}]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


async def test_the_document_is_well_formed(gw: Gateway) -> None:
    doc = await document(gw)
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    refs = {value for key, value in walk(doc) if key == "$ref"}
    assert refs and all(ref.removeprefix("#/components/schemas/") in schemas for ref in refs)
    for name, schema in schemas.items():
        leaked = {key for key, _ in walk(schema) if key in NOT_JSON_SCHEMA} - {"properties"}
        assert not leaked, (name, leaked)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert set(doc["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            if op["x-turnout-access"] != "public":
                assert {"401", "403"} <= statuses, (method, path)
            if "{" in path:
                assert "404" in statuses, (method, path)
            if "requestBody" in op:
                assert {"400", "413", "415"} <= statuses, (method, path)
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


async def test_the_key_secret_is_only_in_the_answer_that_mints_it(gw: Gateway) -> None:
    schemas = (await document(gw))["components"]["schemas"]
    with_secret = {name for name, schema in schemas.items()
                   if "key" in schema.get("properties", {})}
    assert with_secret == {"CreatedKey"}
    assert all(schema.get("additionalProperties") is False for name, schema in schemas.items()
               if name.endswith(("View", "List", "Key")))


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nowhere", 404), ("DELETE", "/tenants", 405), ("GET", "/tenants/a/b/c", 404)])
async def test_unrouted_admin_requests_answer_in_the_error_shape(
        gw: Gateway, method: str, path: str, status: int) -> None:
    async with gw.http.request(method, f"{gw.url}{PREFIX}{path}",
                               headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as reply:
        assert reply.status == status and reply.content_type == "application/json"
        body = orjson.loads(await reply.read())
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}


@pytest.mark.parametrize(("headers", "body", "status", "kind"), [
    ({"Content-Type": "text/plain"}, b'{"id": "x", "name": "X"}', 415,
     "unsupported_media_type"),
    ({"Content-Type": "application/json"}, b'{"id": "x", "name": "X"', 400, "invalid_request"),
    ({"Content-Type": "application/json"}, b'{"id": "x", "name": "\\ud800"}', 400,
     "invalid_request"),
    ({"Content-Type": "application/json"}, b'{"id": 7, "name": "X"}', 400, "invalid_request"),
    ({"Content-Type": "application/json"}, b"x" * (11 * 1024 * 1024), 413, "payload_too_large"),
])
async def test_bad_bodies_are_refused_in_the_error_shape(
        gw: Gateway, headers: dict[str, str], body: bytes, status: int, kind: str) -> None:
    async with gw.http.post(f"{gw.url}{PREFIX}/tenants", data=io.BytesIO(body),
                            headers={"Authorization": f"Bearer {ADMIN_KEY}", **headers}) as reply:
        assert reply.status == status and reply.content_type == "application/json"
        assert orjson.loads(await reply.read())["error"]["type"] == kind


async def test_a_time_with_an_offset_is_kept_as_the_same_instant(gw: Gateway) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with gw.http.post(f"{gw.url}{PREFIX}/tenants", json={"id": "acme", "name": "A"},
                            headers=auth) as reply:
        assert reply.status == 201
    async with gw.http.post(f"{gw.url}{PREFIX}/tenants/acme/keys", headers=auth,
                            json={"name": "k", "expires_at": "2030-01-01T10:00:00+05:00"}
                            ) as reply:
        created = await reply.json()
    async with gw.http.get(f"{gw.url}{PREFIX}/keys/{created['id']}", headers=auth) as reply:
        assert (await reply.json())["expires_at"] == "2030-01-01T05:00:00Z"
