"""The admin API under `/admin/v1`: tenants and their virtual keys.

The admin key (`tenancy.admin_key`) manages everything; a tenant's own virtual key reads
its own tenant and keys' metadata, and nothing of anyone else's (another tenant's id is a
404, as if it did not exist). A key's secret is returned once, when it is created; only
its id, name, scope and dates are ever shown again. Every identifier in a path is checked
against its alphabet before it reaches the store.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from turnout.config.runtime import TenancySettings
from turnout.core.errors import TurnoutError
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.gateway.auth import presented_key
from turnout.tenancy import keys
from turnout.tenancy.directory import KeyDirectory
from turnout.tenancy.policy import NO_POLICY, Policy
from turnout.tenancy.records import TENANT_ID, KeyRecord, Tenant, TenantConflict, TenantStore

PREFIX = "/admin/v1"
_M = TypeVar("_M", bound=BaseModel)
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
"""Names and aliases: no control characters (no NUL a database would choke on)."""
_Alias = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]


class NewTenant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=f"^{TENANT_ID.pattern}$", description="Lowercase slug: a-z, 0-9, -")
    name: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE)


class TenantChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE)
    aliases: list[_Alias] | None = Field(None, max_length=1000)
    """Aliases the key may call; omitted for all."""
    expires_at: datetime | None = None
    policy: Policy = NO_POLICY
    """The key's own limits and budgets (its tenant's apply too)."""


@dataclass(frozen=True, slots=True)
class AdminCaller:
    admin: bool
    tenant_id: str | None = None


class AdminError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


Handler = Callable[[web.Request, AdminCaller], Awaitable[web.Response]]


class AdminApi:
    """Route handlers over the engine's tenant store."""

    def __init__(self, engine: Engine, settings: TenancySettings) -> None:
        self._engine = engine
        self._settings = settings
        self._admin_key = settings.admin_key.encode() if settings.admin_key else None

    def routes(self) -> list[web.RouteDef]:
        from turnout.gateway.admin_byok import byok_routes  # it imports this module

        wrap = self.wrap
        return [
            web.post(f"{PREFIX}/tenants", wrap(self.create_tenant)),
            web.get(f"{PREFIX}/tenants", wrap(self.list_tenants)),
            web.get(f"{PREFIX}/tenants/{{tenant_id}}", wrap(self.get_tenant)),
            web.patch(f"{PREFIX}/tenants/{{tenant_id}}", wrap(self.change_tenant)),
            web.post(f"{PREFIX}/tenants/{{tenant_id}}/keys", wrap(self.create_key)),
            web.get(f"{PREFIX}/tenants/{{tenant_id}}/keys", wrap(self.list_keys)),
            web.get(f"{PREFIX}/keys/{{key_id}}", wrap(self.get_key)),
            web.post(f"{PREFIX}/keys/{{key_id}}/revoke", wrap(self.revoke_key)),
            web.put(f"{PREFIX}/tenants/{{tenant_id}}/policy", wrap(self.set_tenant_policy)),
            web.put(f"{PREFIX}/keys/{{key_id}}/policy", wrap(self.set_key_policy)),
            *byok_routes(self),
        ]

    # -- tenants -----------------------------------------------------------------------
    async def create_tenant(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        body = await read_body(http, NewTenant)
        try:
            tenant = await (await self.store()).create_tenant(body.id, body.name)
        except TenantConflict:
            raise AdminError(409, "conflict", f"A tenant with id '{body.id}' exists.") from None
        return json_response(_tenant(tenant), 201)

    async def list_tenants(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        tenants = await (await self.store()).list_tenants()
        return json_response({"data": [_tenant(t) for t in tenants]})

    async def get_tenant(self, http: web.Request, caller: AdminCaller) -> web.Response:
        return json_response(_tenant(await self.visible_tenant(http, caller)))

    async def change_tenant(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        tenant = await self.visible_tenant(http, caller)
        body = await read_body(http, TenantChange)
        changed = await (await self.store()).set_tenant_disabled(tenant.id, body.disabled)
        assert changed is not None
        (await self.directory()).forget_tenant(tenant.id)
        return json_response(_tenant(changed))

    async def set_tenant_policy(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        tenant = await self.visible_tenant(http, caller)
        policy = await read_body(http, Policy)
        changed = await (await self.store()).set_tenant_policy(tenant.id, policy)
        assert changed is not None
        (await self.directory()).forget_tenant(tenant.id)
        return json_response(_tenant(changed))

    # -- keys --------------------------------------------------------------------------
    async def create_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        tenant = await self.visible_tenant(http, caller)
        body = await read_body(http, NewKey)
        expires = body.expires_at
        if expires is not None and expires.tzinfo is None:
            raise AdminError(400, "invalid_request",
                             "expires_at must name its time zone (e.g. 2027-01-01T00:00:00Z).")
        minted = keys.mint()
        record = KeyRecord(minted.key_id, tenant.id, body.name, minted.digest,
                           datetime.now(UTC), expires, None,
                           frozenset(body.aliases) if body.aliases is not None else None,
                           body.policy)
        await (await self.store()).add_key(record)
        return json_response({**_key(record), "key": minted.token}, 201)

    async def list_keys(self, http: web.Request, caller: AdminCaller) -> web.Response:
        tenant = await self.visible_tenant(http, caller)
        records = await (await self.store()).list_keys(tenant.id)
        return json_response({"data": [_key(r) for r in records]})

    async def get_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        return json_response(_key(await self.visible_key(http, caller)))

    async def revoke_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        record = await self.visible_key(http, caller)
        revoked = await (await self.store()).revoke_key(record.id, datetime.now(UTC))
        assert revoked is not None
        (await self.directory()).forget(record.id)
        return json_response(_key(revoked))

    async def set_key_policy(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        record = await self.visible_key(http, caller)
        policy = await read_body(http, Policy)
        changed = await (await self.store()).set_key_policy(record.id, policy)
        assert changed is not None
        (await self.directory()).forget(record.id)
        return json_response(_key(changed))

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

    async def _caller(self, http: web.Request) -> AdminCaller:
        presented = presented_key(http.headers)
        if presented is None:
            raise AdminError(401, "authentication_error", "Missing admin or tenant API key.")
        if self._admin_key is not None and hmac.compare_digest(presented.encode(),
                                                               self._admin_key):
            return AdminCaller(admin=True)
        ctx = CallContext(credential=presented, caller="http")
        try:
            await self._engine.authenticate(ctx)
        except TurnoutError as exc:
            raise AdminError(exc.status, "authentication_error", exc.message) from None
        if ctx.identity is None:
            raise AdminError(401, "authentication_error", "Invalid admin or tenant API key.")
        return AdminCaller(admin=False, tenant_id=ctx.identity.tenant_id)

    def wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(http: web.Request) -> web.Response:
            try:
                return await handler(http, await self._caller(http))
            except AdminError as error:
                return json_response({"error": {"type": error.kind, "message": error.message}},
                             error.status)
        return serve


def need_admin(caller: AdminCaller) -> None:
    if not caller.admin:
        raise AdminError(403, "permission_error", "This needs the admin key.")


async def read_body(http: web.Request, model: type[_M]) -> _M:
    raw = await http.read()
    try:
        data = orjson.loads(raw or b"null")
    except orjson.JSONDecodeError:
        raise AdminError(400, "invalid_request", "The body is not valid JSON.") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise AdminError(400, "invalid_request", f"{where}: {first['msg']}") from None


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data),
                        content_type="application/json")


def when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _tenant(tenant: Tenant) -> dict[str, object]:
    return {"id": tenant.id, "name": tenant.name, "created_at": when(tenant.created_at),
            "disabled": tenant.disabled_at is not None,
            "policy": tenant.policy.model_dump(mode="json")}


def _key(record: KeyRecord) -> dict[str, object]:
    return {"id": record.id, "tenant_id": record.tenant_id, "name": record.name,
            "aliases": sorted(record.aliases) if record.aliases is not None else None,
            "created_at": when(record.created_at), "expires_at": when(record.expires_at),
            "revoked_at": when(record.revoked_at),
            "policy": record.policy.model_dump(mode="json")}
