"""The authenticate stage: a credential is checked by each configured check in turn
(static gateway keys, virtual keys); the first that recognises it decides."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import Protocol

from turnout.core.errors import AuthenticationFailed
from turnout.engine.context import CallContext
from turnout.engine.pipeline import Stage


class CredentialCheck(Protocol):
    """Recognises one kind of credential."""

    async def check(self, credential: str, ctx: CallContext) -> bool:
        """True when the credential is valid (the check sets `ctx.principal`), False when
        it is not this check's to judge; raise to refuse it with a precise reason."""
        ...


class Authenticate(Stage):
    """Refuses calls whose credential no check accepts. In-process calls
    (`caller="library"`) that present no credential are the configuration's owner."""

    name = "authenticate"

    def __init__(self, checks: Sequence[CredentialCheck]) -> None:
        self._checks = tuple(checks)

    async def authenticate(self, ctx: CallContext) -> None:
        presented = ctx.credential
        if presented is None and ctx.caller == "library":
            return
        if presented:
            for check in self._checks:
                if await check.check(presented, ctx):
                    return
        raise AuthenticationFailed("Invalid or missing gateway API key.")


class StaticKeys:
    """The configured gateway keys (`server.gateway_keys`): the principal is `key-<n>`,
    the key's position in sorted order, never the key."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in sorted(keys) if k)

    async def check(self, credential: str, ctx: CallContext) -> bool:
        principal = self.match(credential)
        if principal is None:
            return False
        ctx.principal = principal
        return True

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
