"""`GET /metrics` for aiohttp: the Prometheus text exposition of one registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

MetricsHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def metrics_handler(registry: CollectorRegistry) -> MetricsHandler:
    """An aiohttp handler serving `registry` in the Prometheus text format."""

    async def metrics(_: web.Request) -> web.StreamResponse:
        # Rendered on the event loop, not in a thread: collectors such as StateCollector
        # read engine state that only the loop mutates.
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics
