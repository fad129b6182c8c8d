"""The admin API under `/admin/v1`: tenants and their virtual keys.

The admin key (`tenancy.admin_key`) manages everything; a tenant's own virtual key reads
its own tenant and keys' metadata, and nothing of anyone else's (another tenant's id is a
404, as if it did not exist). A key's secret is returned once, when it is created; only
its id, name, scope and dates are ever shown again. Every identifier in a path is checked
against its alphabet before it reaches the store.

Each operation is an `AdminRoute` (`operations()`): `routes()` turns them, with those of
the other admin modules, into aiohttp routes behind one caller check, plus
`GET /admin/v1/openapi.json`, the OpenAPI document describing them all.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from turnout.config.runtime import TenancySettings
from turnout.core.errors import TurnoutError
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.gateway.admin_models import (
    CreatedKey,
    KeyList,
    KeyView,
    NewKey,
    NewTenant,
    TenantChange,
    TenantList,
    TenantView,
)
from turnout.gateway.admin_spec import (
    KEY_ID_PARAM,
    PREFIX,
    TENANT_ID_PARAM,
    Access,
    AdminCaller,
    AdminRoute,
    Handler,
)
from turnout.gateway.auth import presented_key
from turnout.gateway.openapi import openapi_document
from turnout.tenancy import keys
from turnout.tenancy.directory import KeyDirectory
from turnout.tenancy.policy import Policy
from turnout.tenancy.records import TENANT_ID, KeyRecord, Tenant, TenantConflict, TenantStore

__all__ = ["PREFIX", "AdminApi", "AdminCaller", "AdminError", "AdminRoute", "json_response",
           "need_admin", "read_body"]

_M = TypeVar("_M", bound=BaseModel)
_log = logging.getLogger("turnout.gateway")
API_VERSION = "1.0.0"
"""The admin API's version in the document (`/admin/v1` changes only compatibly)."""
_ANONYMOUS = AdminCaller(admin=False)
_POLICY_EXAMPLE = {"limits": {"rpm": 600, "concurrency": 20},
                   "budgets": [{"period": "day", "usd": 25}]}


class AdminError(Exception):
    """An admin error response: `{"error": {"type": kind, "message": message}}`."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class AdminApi:
    """Route handlers over the engine's tenant store."""

    def __init__(self, engine: Engine, settings: TenancySettings) -> None:
        self._engine = engine
        self._settings = settings
        self._admin_key = settings.admin_key.encode() if settings.admin_key else None

    def operations(self) -> list[AdminRoute]:
        """Tenants, keys and their policies."""
        tenant, key = (TENANT_ID_PARAM,), (KEY_ID_PARAM,)
        admin, own = Access.ADMIN, Access.TENANT
        return [
            AdminRoute("POST", "/tenants", self.create_tenant, "createTenant",
                       "Create a tenant", admin, {201: TenantView}, body=NewTenant,
                       body_example={"id": "example-tenant", "name": "Example Inc."},
                       errors=frozenset({409}), tags=("tenants",)),
            AdminRoute("GET", "/tenants", self.list_tenants, "listTenants",
                       "List tenants", admin, {200: TenantList}, tags=("tenants",)),
            AdminRoute("GET", "/tenants/{tenant_id}", self.get_tenant, "getTenant",
                       "Get a tenant", own, {200: TenantView}, params=tenant,
                       tags=("tenants",)),
            AdminRoute("PATCH", "/tenants/{tenant_id}", self.change_tenant, "changeTenant",
                       "Disable or enable a tenant", admin, {200: TenantView},
                       body=TenantChange, body_example={"disabled": False}, params=tenant,
                       description="A disabled tenant's keys are refused (403).",
                       tags=("tenants",)),
            AdminRoute("PUT", "/tenants/{tenant_id}/policy", self.set_tenant_policy,
                       "setTenantPolicy", "Set a tenant's limits and budgets", admin,
                       {200: TenantView}, body=Policy, body_example=_POLICY_EXAMPLE,
                       params=tenant, tags=("tenants",)),
            AdminRoute("POST", "/tenants/{tenant_id}/keys", self.create_key, "createKey",
                       "Mint a virtual key", admin, {201: CreatedKey}, body=NewKey,
                       body_example={"name": "ci", "aliases": ["default"]}, params=tenant,
                       description="The answer's `key` is the only time it is shown.",
                       tags=("keys",)),
            AdminRoute("GET", "/tenants/{tenant_id}/keys", self.list_keys, "listKeys",
                       "List a tenant's keys", own, {200: KeyList}, params=tenant,
                       tags=("keys",)),
            AdminRoute("GET", "/keys/{key_id}", self.get_key, "getKey",
                       "Get a key's metadata", own, {200: KeyView}, params=key,
                       tags=("keys",)),
            AdminRoute("POST", "/keys/{key_id}/revoke", self.revoke_key, "revokeKey",
                       "Revoke a key", admin, {200: KeyView}, params=key,
                       description="At once on this replica; on the others within "
                                   "`key_cache_s`. Revoking twice keeps the first time.",
                       tags=("keys",)),
            AdminRoute("PUT", "/keys/{key_id}/policy", self.set_key_policy, "setKeyPolicy",
                       "Set a key's own limits and budgets", admin, {200: KeyView},
                       body=Policy, body_example=_POLICY_EXAMPLE, params=key,
                       tags=("keys",)),
        ]

    def routes(self, more: Iterable[AdminRoute] = ()) -> list[web.RouteDef]:
        """aiohttp routes for these operations, the other admin modules' (bring your own
        key, spend reports) and `more`, and `GET /admin/v1/openapi.json`, the OpenAPI
        document describing them all."""
        from turnout.gateway.admin_byok import byok_operations  # they import this module
        from turnout.gateway.admin_spend import spend_operations

        async def serve_document(http: web.Request, caller: AdminCaller) -> web.Response:
            return web.Response(body=document, content_type="application/json")

        declared = [
            AdminRoute("GET", "/openapi.json", serve_document, "getOpenApiDocument",
                       "This OpenAPI document", Access.PUBLIC, {200: None},
                       description="It describes the API and holds no secret and no "
                                   "tenant's data, so SDK generators need no key for it.",
                       tags=("meta",)),
            *self.operations(), *byok_operations(self), *spend_operations(self),
            *more]
        document = orjson.dumps(openapi_document(declared, version=API_VERSION))
        # One path's methods side by side: aiohttp joins adjacent routes of a path into one
        # resource, and a later resource for the same path would never be reached (405).
        paths = list(dict.fromkeys(r.full_path for r in declared))
        ordered = sorted(declared, key=lambda r: paths.index(r.full_path))
        return [web.route(r.method, r.full_path, self.guard(r)) for r in ordered]

    # -- tenants -----------------------------------------------------------------------
    async def create_tenant(self, http: web.Request, caller: AdminCaller) -> web.Response:
        body = await read_body(http, NewTenant)
        try:
            tenant = await (await self.store()).create_tenant(body.id, body.name)
        except TenantConflict:
            raise AdminError(409, "conflict", f"A tenant with id '{body.id}' exists.") from None
        return json_response(TenantView.of(tenant), 201)

    async def list_tenants(self, http: web.Request, caller: AdminCaller) -> web.Response:
        tenants = await (await self.store()).list_tenants()
        return json_response(TenantList(data=[TenantView.of(t) for t in tenants]))

    async def get_tenant(self, http: web.Request, caller: AdminCaller) -> web.Response:
        return json_response(TenantView.of(await self.visible_tenant(http, caller)))

    async def change_tenant(self, http: web.Request, caller: AdminCaller) -> web.Response:
        tenant = await self.visible_tenant(http, caller)
        body = await read_body(http, TenantChange)
        changed = await (await self.store()).set_tenant_disabled(tenant.id, body.disabled)
        assert changed is not None
        (await self.directory()).forget_tenant(tenant.id)
        return json_response(TenantView.of(changed))

    async def set_tenant_policy(self, http: web.Request, caller: AdminCaller) -> web.Response:
        tenant = await self.visible_tenant(http, caller)
        policy = await read_body(http, Policy)
        changed = await (await self.store()).set_tenant_policy(tenant.id, policy)
        assert changed is not None
        (await self.directory()).forget_tenant(tenant.id)
        return json_response(TenantView.of(changed))

    # -- keys --------------------------------------------------------------------------
    async def create_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        tenant = await self.visible_tenant(http, caller)
        body = await read_body(http, NewKey)
        minted = keys.mint()
        record = KeyRecord(minted.key_id, tenant.id, body.name, minted.digest,
                           datetime.now(UTC), body.expires, None,
                           frozenset(body.aliases) if body.aliases is not None else None,
                           body.policy)
        await (await self.store()).add_key(record)
        return json_response(CreatedKey.minted(record, minted.token), 201)

    async def list_keys(self, http: web.Request, caller: AdminCaller) -> web.Response:
        tenant = await self.visible_tenant(http, caller)
        records = await (await self.store()).list_keys(tenant.id)
        return json_response(KeyList(data=[KeyView.of(r) for r in records]))

    async def get_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        return json_response(KeyView.of(await self.visible_key(http, caller)))

    async def revoke_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        record = await self.visible_key(http, caller)
        revoked = await (await self.store()).revoke_key(record.id, datetime.now(UTC))
        assert revoked is not None
        (await self.directory()).forget(record.id)
        return json_response(KeyView.of(revoked))

    async def set_key_policy(self, http: web.Request, caller: AdminCaller) -> web.Response:
        record = await self.visible_key(http, caller)
        policy = await read_body(http, Policy)
        changed = await (await self.store()).set_key_policy(record.id, policy)
        assert changed is not None
        (await self.directory()).forget(record.id)
        return json_response(KeyView.of(changed))

    # -- plumbing ----------------------------------------------------------------------
    async def visible_tenant(self, http: web.Request, caller: AdminCaller) -> Tenant:
        tenant_id = http.match_info["tenant_id"]
        if TENANT_ID.fullmatch(tenant_id) and (caller.admin or caller.tenant_id == tenant_id):
            tenant = await (await self.store()).get_tenant(tenant_id)
            if tenant is not None:
                return tenant
        raise AdminError(404, "not_found", "No such tenant.")

    async def visible_key(self, http: web.Request, caller: AdminCaller) -> KeyRecord:
        key_id = http.match_info["key_id"]
        if keys.looks_like_key_id(key_id):
            record = await (await self.store()).get_key(key_id)
            if record is not None and (caller.admin or caller.tenant_id == record.tenant_id):
                return record
        raise AdminError(404, "not_found", "No such key.")

    @property
    def engine(self) -> Engine:
        """The engine: its current config and shared resources, for endpoint modules."""
        return self._engine

    async def store(self) -> TenantStore:
        return await self._engine.resources.tenant_store(self._settings.database_url)

    async def directory(self) -> KeyDirectory:
        return await self._engine.resources.key_directory(self._settings.database_url,
                                                          self._settings.key_cache_s)

    async def caller(self, http: web.Request) -> AdminCaller:
        """The authenticated caller of `http` (401 without a valid key)."""
        presented = presented_key(http.headers)
        if presented is None:
            raise AdminError(401, "authentication_error", "Missing admin or tenant API key.")
        if self._admin_key is not None and hmac.compare_digest(
                presented.encode("utf-8", "surrogateescape"), self._admin_key):
            return AdminCaller(admin=True)
        ctx = CallContext(credential=presented, caller="http")
        try:
            await self._engine.authenticate(ctx)
        except TurnoutError as exc:
            kind = "permission_error" if exc.status == 403 else "authentication_error"
            raise AdminError(exc.status, kind, exc.message) from None
        if ctx.identity is None:
            raise AdminError(401, "authentication_error", "Invalid admin or tenant API key.")
        return AdminCaller(admin=False, tenant_id=ctx.identity.tenant_id)

    def guard(self, route: AdminRoute) -> Callable[[web.Request], Awaitable[web.Response]]:
        """`route`'s handler behind the caller check its access demands."""
        if route.access is Access.PUBLIC:
            return self.wrap(route.handler, public=True)
        return self.wrap(route.handler, admin_only=route.access is Access.ADMIN)

    def wrap(self, handler: Handler, *, admin_only: bool = False, public: bool = False
             ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """`handler` with its caller authenticated (unless `public`), refused with 403
        unless it is the admin when `admin_only`, and every error as JSON."""
        async def serve(http: web.Request) -> web.Response:
            try:
                caller = _ANONYMOUS if public else await self.caller(http)
                if admin_only:
                    need_admin(caller)
                return await handler(http, caller)
            except AdminError as error:
                return error_response(error)
            except Exception:
                _log.exception("unexpected error serving %s %s", http.method, http.path)
                return error_response(AdminError(500, "internal_error",
                                                 "The gateway failed to answer."))
        return serve


def need_admin(caller: AdminCaller) -> None:
    if not caller.admin:
        raise AdminError(403, "permission_error", "This needs the admin key.")


async def read_body(http: web.Request, model: type[_M]) -> _M:
    """The JSON body validated by `model` (400 if it is not, 413 too big, 415 not JSON)."""
    declared = http.headers.get("Content-Type")
    if declared is not None and not _is_json(http.content_type):
        raise AdminError(415, "unsupported_media_type",
                         "Send the body as JSON, with Content-Type: application/json.")
    try:
        raw = await http.read()
    except web.HTTPRequestEntityTooLarge:
        raise AdminError(413, "payload_too_large", "The body is too large.") from None
    try:
        orjson.loads(raw or b"null")  # stricter than pydantic's parser: no lone surrogates
    except orjson.JSONDecodeError:
        raise AdminError(400, "invalid_request", "The body is not valid JSON.") from None
    try:
        # Strict: the types the document states (no "1" for 1, no 0 for false).
        return model.model_validate_json(raw or b"null", strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise AdminError(400, "invalid_request", f"{where}: {first['msg']}") from None


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def json_response(data: BaseModel | object, status: int = 200) -> web.Response:
    body = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json")


def error_response(error: AdminError) -> web.Response:
    return json_response({"error": {"type": error.kind, "message": error.message}},
                         error.status)
