"""Virtual keys: a tenant's key authenticates its calls and confines them to the aliases
it was given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from turnout.config.runtime import TenancySettings
from turnout.core.errors import AuthenticationFailed, ModelNotFound, PermissionDenied
from turnout.engine.context import CallContext, Identity
from turnout.engine.outcome import ChatOutcome
from turnout.engine.pipeline import Call, Stage
from turnout.stages.resources import StageResources
from turnout.tenancy import keys


class VirtualKeys:
    """Recognises `tk_...` credentials. The stored digest is checked in constant time;
    a revoked or expired key, or a disabled tenant, is refused with that reason (only to
    someone who holds the whole key)."""

    def __init__(self, settings: TenancySettings, resources: StageResources,
                 now: Callable[[], datetime] | None = None) -> None:
        self._settings = settings
        self._resources = resources
        self._now = now or (lambda: datetime.now(UTC))

    async def check(self, credential: str, ctx: CallContext) -> bool:
        parsed = keys.parse(credential)
        if parsed is None:
            return False
        key_id, secret = parsed
        directory = await self._resources.key_directory(self._settings.database_url,
                                                        self._settings.key_cache_s)
        entry = await directory.entry(key_id)
        record, tenant = entry.key, entry.tenant
        if record is None or tenant is None or not keys.verify(secret, record.digest):
            return False
        if record.revoked_at is not None or record.expires_at is not None:
            now = self._now()
            if record.revoked_at is not None and record.revoked_at <= now:
                raise AuthenticationFailed("This API key has been revoked.")
            if record.expires_at is not None and record.expires_at <= now:
                raise AuthenticationFailed("This API key has expired.")
        if tenant.disabled_at is not None:
            raise PermissionDenied("This API key's tenant is disabled.")
        ctx.principal = f"{tenant.id}/{record.id}"
        ctx.identity = Identity(tenant.id, record.id, record.aliases, tenant.policy,
                                record.policy)
        return True


class AliasScope(Stage):
    """A key scoped to some aliases reaches only those: any other is a 404, as if it did
    not exist (the same answer OpenAI gives for a model a key may not use)."""

    name = "alias_scope"

    async def on_request(self, call: Call) -> ChatOutcome | None:
        identity = call.ctx.identity
        if identity is not None and identity.aliases is not None and (
                call.request.model not in identity.aliases):
            raise ModelNotFound(f"The model '{call.request.model}' does not exist or you do "
                                "not have access to it.", param="model")
        return None
