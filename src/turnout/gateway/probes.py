"""Liveness, readiness and metrics endpoints, and who may read what they reveal.

`/metrics` and the details of `/readyz` name route aliases, deployment ids and traffic, so
they take a key whenever the gateway has any: `server.metrics_key` if set, else any gateway
key; `server.public_metrics: true` opens them (a scraper on a private network). `/healthz`
(liveness) and the status of `/readyz` (readiness) stay open, because load balancers and
orchestrators hold no key; they reveal nothing but up/down.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from turnout.config.runtime import ServerSettings
from turnout.core.errors import AuthenticationFailed
from turnout.dialects.base import Dialect
from turnout.engine.engine import Engine
from turnout.gateway.auth import presented_key
from turnout.gateway.drain import Drain
from turnout.observability.handler import MetricsHandler
from turnout.stages.authenticate import StaticKeys

_JSON = "application/json"
_HEALTHY = orjson.dumps({"status": "ok"})


class MonitoringAccess:
    """Decides who may read `/metrics` and the components of `/readyz`."""

    __slots__ = ("_keys",)

    def __init__(self, settings: ServerSettings) -> None:
        keys: StaticKeys | None
        if settings.public_metrics:
            keys = None
        elif settings.metrics_key is not None:
            # A dedicated key: scrapers need not hold a key that can spend provider credit.
            keys = StaticKeys([settings.metrics_key])
        elif settings.gateway_keys:
            keys = StaticKeys(settings.gateway_keys)
        else:
            keys = None  # no keys configured: open, as chat is (loopback only)
        self._keys = keys

    def allows(self, headers: Mapping[str, str]) -> bool:
        """Whether these request headers carry what monitoring needs (if anything)."""
        return self._keys is None or self._keys.match(presented_key(headers)) is not None


class Probes:
    """The `/healthz`, `/readyz` and `/metrics` handlers of one gateway."""

    __slots__ = ("_access", "_dialect", "_drain", "_engine", "_metrics")

    def __init__(self, engine: Engine, access: MonitoringAccess, metrics: MetricsHandler,
                 dialect: Dialect, drain: Drain) -> None:
        self._engine = engine
        self._drain = drain
        self._access = access
        self._metrics = metrics
        self._dialect = dialect
        """The error shape of a refused `/metrics` (OpenAI's: what most tools parse)."""

    async def healthz(self, _: web.Request) -> web.Response:
        """Liveness: the process answers. Says nothing else, to anyone; stays 200 while
        draining (restarting a draining process would cut what the drain protects)."""
        return web.Response(body=_HEALTHY, content_type=_JSON)

    async def readyz(self, request: web.Request) -> web.Response:
        """Readiness: 200 or 503 (also while draining) for everyone; the components only
        for monitoring."""
        components = self._engine.readiness()
        failed = any(status.startswith("failed") for status in components.values())
        degraded = any(status.startswith("degraded") for status in components.values())
        # Degraded still serves (per-process limits), so it stays ready for the balancer.
        status = ("draining" if self._drain.draining else "unavailable" if failed
                  else "degraded" if degraded else "ready")
        body: dict[str, object] = {"status": status}
        if self._access.allows(request.headers):
            body["components"] = components
        return web.Response(status=200 if status in ("ready", "degraded") else 503,
                            body=orjson.dumps(body), content_type=_JSON)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """Prometheus metrics, for monitoring only."""
        if not self._access.allows(request.headers):
            status, headers, body = self._dialect.encode_error(
                AuthenticationFailed("Invalid or missing key for /metrics."))
            return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON,
                                headers={**headers, "WWW-Authenticate": "Bearer"})
        return await self._metrics(request)
