"""The HTTP shell: a route table over the engine. Nothing here knows a wire field name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from turnout.config.runtime import RuntimeConfig
from turnout.dialects.registry import get_dialect
from turnout.engine.engine import Engine
from turnout.engine.observe import Observer
from turnout.gateway.admin import AdminApi
from turnout.gateway.drain import DRAIN, Drain
from turnout.gateway.fallback import add_json_fallbacks
from turnout.gateway.handlers import ChatHandler
from turnout.gateway.models import ModelsEndpoints
from turnout.gateway.probes import MonitoringAccess, Probes
from turnout.observability.handler import metrics_handler
from turnout.observability.metrics import PrometheusObserver, StateCollector
from turnout.observability.quota_metrics import QuotaCollector
from turnout.observability.spend_metrics import SpendCollector

ENGINE = web.AppKey("engine", Engine)
METRICS = web.AppKey("metrics", PrometheusObserver)


def create_gateway(runtime: RuntimeConfig, *, engine: Engine | None = None,
                   observers: Sequence[Observer] = ()) -> web.Application:
    """Build the gateway application for a compiled config. The engine is created here
    (or given, e.g. with an injected clock) and closed with the application. `observers`
    receive the engine's events, after the gateway's own Prometheus metrics."""
    metrics = PrometheusObserver()
    if engine is None:
        engine = Engine(runtime, observers=[metrics, *observers])
    else:
        for observer in (metrics, *observers):
            engine.observers.add(observer)
    metrics.registry.register(StateCollector(engine.state))
    metrics.registry.register(QuotaCollector(engine.resources.all_shared_stores))
    metrics.registry.register(SpendCollector(engine.resources.all_spend_ledgers))
    settings = runtime.server
    # aiohttp's own body limit sits above ours so that we answer 413 in the dialect's shape.
    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app[ENGINE] = engine
    app[METRICS] = metrics
    drain = app[DRAIN] = Drain()
    openai = ChatHandler(get_dialect("openai_chat"), engine, settings.max_body_bytes,
                         drain=drain)
    anthropic = ChatHandler(get_dialect("anthropic_messages"), engine,
                            settings.max_body_bytes, drain=drain)

    models = ModelsEndpoints(engine, openai, anthropic)
    probes = Probes(engine, MonitoringAccess(settings), metrics_handler(metrics.registry),
                    openai.dialect, drain)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await engine.start()
        yield
        await engine.aclose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/chat/completions", openai.handle)
    app.router.add_post("/chat/completions", openai.handle)
    app.router.add_post("/v1/messages", anthropic.handle)
    app.router.add_get("/v1/models", models.listing)
    # `.+`: aliases may hold slashes (`openai/gpt-4o`), sent raw or as %2F.
    app.router.add_get("/v1/models/{model_id:.+}", models.lookup)
    app.router.add_get("/healthz", probes.healthz)
    app.router.add_get("/readyz", probes.readyz)
    app.router.add_get("/metrics", probes.metrics)
    if runtime.tenancy is not None:
        app.router.add_routes(AdminApi(engine, runtime.tenancy).routes())
    add_json_fallbacks(app, openai.dialect, anthropic.dialect)  # keep last: after every route
    return app
