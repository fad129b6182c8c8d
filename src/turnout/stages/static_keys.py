"""Authentication by static gateway keys (`server.gateway_keys`), for single-tenant setups."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from turnout.core.errors import AuthenticationFailed
from turnout.engine.context import CallContext
from turnout.engine.pipeline import Stage


class StaticKeys(Stage):
    """Accepts a call whose credential is one of the configured keys; the principal is
    `key-<n>` (the key's position, never the key). In-process calls (`caller="library"`)
    that present no credential are the configuration's owner and pass."""

    name = "static_keys"

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in sorted(keys) if k)

    async def authenticate(self, ctx: CallContext) -> None:
        presented = ctx.credential
        if presented is None and ctx.caller == "library":
            return
        principal = self.match(presented)
        if principal is None:
            raise AuthenticationFailed("Invalid or missing gateway API key.")
        ctx.principal = principal

    def match(self, presented: str | None) -> str | None:
        """The principal for `presented`, or None. Compares against every key in constant
        time, so timing reveals neither which key matched nor how much of one."""
        if not presented:
            return None
        candidate = presented.encode()
        matched = None
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(candidate, key):
                matched = index
        return None if matched is None else f"key-{matched}"
