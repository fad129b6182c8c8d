"""Static gateway keys: who may call, until tenants and virtual keys arrive."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping


class GatewayKeys:
    """Accepts `Authorization: Bearer <key>` or `x-api-key: <key>`. With no keys configured,
    every caller is accepted (the server then binds to loopback only)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in keys if k)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, headers: Mapping[str, str]) -> str | None:
        """The principal name for valid credentials, `"anonymous"` when keys are off, None
        when credentials are missing or wrong."""
        if not self._keys:
            return "anonymous"
        presented = headers.get("x-api-key")
        if presented is None:
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                presented = auth[7:].strip()
        if not presented:
            return None
        candidate = presented.encode()
        # Constant-time comparison against every key, so timing reveals nothing.
        matched = None
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(candidate, key):
                matched = index
        return None if matched is None else f"key-{matched}"
