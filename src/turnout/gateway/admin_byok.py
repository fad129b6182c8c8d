"""The admin API's bring-your-own-key endpoints: a tenant's own provider keys.

    PUT    /admin/v1/tenants/{tenant_id}/provider-keys/{provider}   {"api_key": "..."}
    GET    /admin/v1/tenants/{tenant_id}/provider-keys
    GET    /admin/v1/tenants/{tenant_id}/provider-keys/{provider}
    DELETE /admin/v1/tenants/{tenant_id}/provider-keys/{provider}

The admin key writes; a tenant's own virtual key reads its own keys' metadata (another
tenant's id is a 404). No answer ever holds a key: only its fingerprint. The body holds the
key and nothing else (`extra="forbid"`): where the key is sent is the config's
`providers:` entry alone, so a `base_url`, or any other field, is refused. Identifiers are
checked against their alphabets before the store is touched. The endpoints read the
engine's current config, so a reload that rotates master keys applies here at once.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from turnout.config.runtime import TenancySettings
from turnout.gateway.admin import (
    AdminApi,
    AdminCaller,
    AdminError,
    json_response,
    need_admin,
    read_body,
)
from turnout.gateway.admin_spec import TENANT_ID_PARAM, Access, AdminRoute, PathParam

if TYPE_CHECKING:
    from turnout.tenancy.provider_keys import ProviderKeyInfo, SqlProviderKeyStore

PROVIDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""Provider names as the config allows them (`providers:` keys), at most the column's 100
characters."""

_KEY_CHARS = r"^[!-~]+$"
"""Visible ASCII only: the key goes into an HTTP header, where a space, a line break or a
non-ASCII character has no business."""


class ProviderKeyBody(BaseModel):
    """The body of `PUT .../provider-keys/{provider}`: the key, and nothing else."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=8, max_length=4096, pattern=_KEY_CHARS, repr=False,
                         description="The tenant's own key for the provider; never shown "
                                     "again.")


class ProviderKeyView(BaseModel):
    """A stored provider key as the admin API shows it: metadata and a fingerprint."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    provider: str = Field(description="A provider name from the gateway's config.")
    fingerprint: str = Field(description="`...<last 4 characters>:<48-bit keyed HMAC>`; "
                                         "never the key.")
    master_key_id: str = Field(description="The master key that sealed it (rotation).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, info: ProviderKeyInfo) -> ProviderKeyView:
        return cls(tenant_id=info.tenant_id, provider=info.provider,
                   fingerprint=info.fingerprint, master_key_id=info.master_key_id,
                   created_at=info.created_at, updated_at=info.updated_at)


class ProviderKeyList(BaseModel):
    """`GET .../provider-keys`: the tenant's stored keys, by provider name."""

    model_config = ConfigDict(extra="forbid")

    data: list[ProviderKeyView]


class ProviderKeyDeleted(ProviderKeyView):
    """`DELETE .../provider-keys/{provider}`: what was deleted."""

    deleted: Literal[True] = True


PROVIDER_PARAM = PathParam("provider", "A provider name from the gateway's `providers:`.",
                           PROVIDER_NAME.pattern, 100, "openai")


def byok_operations(api: AdminApi) -> list[AdminRoute]:
    """The BYOK operations, for `AdminApi.routes`."""
    endpoints = _ByokEndpoints(api)
    tenant, both = (TENANT_ID_PARAM,), (TENANT_ID_PARAM, PROVIDER_PARAM)
    tags = ("provider keys",)
    return [
        AdminRoute("GET", "/tenants/{tenant_id}/provider-keys", endpoints.list_keys,
                   "listProviderKeys", "List a tenant's own provider keys (fingerprints)",
                   Access.TENANT, {200: ProviderKeyList}, params=tenant, tags=tags),
        AdminRoute("PUT", "/tenants/{tenant_id}/provider-keys/{provider}", endpoints.put_key,
                   "putProviderKey", "Store or replace a tenant's own provider key",
                   Access.ADMIN, {200: ProviderKeyView, 201: ProviderKeyView},
                   body=ProviderKeyBody, body_example={"api_key": "sk-example-0123456789"},
                   params=both, tags=tags,
                   description="201 when new, 200 when it replaced one. The body is the key "
                               "alone: where it is sent comes from the config only."),
        AdminRoute("GET", "/tenants/{tenant_id}/provider-keys/{provider}", endpoints.get_key,
                   "getProviderKey", "A tenant's own provider key (its fingerprint)",
                   Access.TENANT, {200: ProviderKeyView}, params=both, tags=tags),
        AdminRoute("DELETE", "/tenants/{tenant_id}/provider-keys/{provider}",
                   endpoints.delete_key, "deleteProviderKey",
                   "Delete a tenant's own provider key", Access.ADMIN,
                   {200: ProviderKeyDeleted}, params=both, tags=tags),
    ]


class _ByokEndpoints:
    def __init__(self, api: AdminApi) -> None:
        self._api = api

    async def put_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        settings = self._settings()
        provider = _provider(http)
        if provider not in settings.byok_providers:
            allowed = ", ".join(sorted(settings.byok_providers)) or "none"
            raise AdminError(404, "not_found", f"No provider '{provider}' takes tenants' "
                                               f"keys (configured: {allowed}).")
        tenant = await self._api.visible_tenant(http, caller)
        body = await read_body(http, ProviderKeyBody)
        store = await self._store(settings)
        existed = await store.get(tenant.id, provider) is not None
        info = await store.put(tenant.id, provider, body.api_key)
        return json_response(ProviderKeyView.of(info).model_dump(mode="json"),
                             200 if existed else 201)

    async def list_keys(self, http: web.Request, caller: AdminCaller) -> web.Response:
        settings = self._settings()
        tenant = await self._api.visible_tenant(http, caller)
        infos = await (await self._store(settings)).list_keys(tenant.id)
        listing = ProviderKeyList(data=[ProviderKeyView.of(i) for i in infos])
        return json_response(listing.model_dump(mode="json"))

    async def get_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        settings = self._settings()
        provider = _provider(http)
        tenant = await self._api.visible_tenant(http, caller)
        info = await (await self._store(settings)).get(tenant.id, provider)
        if info is None:
            raise AdminError(404, "not_found", "No key stored for that provider.")
        return json_response(ProviderKeyView.of(info).model_dump(mode="json"))

    async def delete_key(self, http: web.Request, caller: AdminCaller) -> web.Response:
        need_admin(caller)
        settings = self._settings()
        provider = _provider(http)  # a provider since dropped from the config is deletable
        tenant = await self._api.visible_tenant(http, caller)
        store = await self._store(settings)
        info = await store.get(tenant.id, provider)
        if info is None or not await store.delete(tenant.id, provider):
            raise AdminError(404, "not_found", "No key stored for that provider.")
        deleted = ProviderKeyDeleted(**ProviderKeyView.of(info).model_dump())
        return json_response(deleted.model_dump(mode="json"))

    def _settings(self) -> TenancySettings:
        """The current config's tenancy (a reload may have rotated master keys)."""
        settings = self._api.engine.runtime.tenancy
        if settings is None or not settings.master_keys:
            raise AdminError(404, "not_found", "Tenants' own provider keys are not enabled "
                                               "on this gateway (tenancy.master_keys).")
        return settings

    async def _store(self, settings: TenancySettings) -> SqlProviderKeyStore:
        # cryptography only on gateways that use it
        from turnout.tenancy.provider_keys import SqlProviderKeyStore
        from turnout.tenancy.sealing import Sealer

        engine = await self._api.engine.resources.sql_engine(settings.database_url)
        return SqlProviderKeyStore(engine, Sealer(settings.master_keys))


def _provider(http: web.Request) -> str:
    provider = http.match_info["provider"]
    if not PROVIDER_NAME.fullmatch(provider):
        raise AdminError(404, "not_found", "No such provider.")
    return provider
