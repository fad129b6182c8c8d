"""`GET /v1/models` and `GET /v1/models/{id}` in the caller's dialect (Anthropic SDKs send
`anthropic-version`), showing a caller only the aliases it may call."""

from __future__ import annotations

from aiohttp import web

from turnout.core.errors import ModelNotFound, TurnoutError
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.gateway.auth import presented_key
from turnout.gateway.handlers import ChatHandler, model_payload, models_payload


class ModelsEndpoints:
    """The model listing and lookup, authenticated like chat calls."""

    def __init__(self, engine: Engine, openai: ChatHandler, anthropic: ChatHandler) -> None:
        self._engine = engine
        self._openai = openai
        self._anthropic = anthropic

    async def listing(self, request: web.Request) -> web.Response:
        handler = self._handler(request)
        try:
            aliases = await self._visible(request)
        except TurnoutError as error:
            return handler.error_response(error)
        body = models_payload(aliases, handler is self._anthropic)
        return web.Response(body=body, content_type="application/json")

    async def lookup(self, request: web.Request) -> web.Response:
        handler = self._handler(request)
        try:
            aliases = await self._visible(request)
        except TurnoutError as error:
            return handler.error_response(error)
        alias = request.match_info["model_id"]
        if alias not in aliases:
            return handler.error_response(ModelNotFound(
                f"The model '{alias}' does not exist or you do not have access to it.",
                param="model"))
        body = model_payload(alias, handler is self._anthropic)
        return web.Response(body=body, content_type="application/json")

    def _handler(self, request: web.Request) -> ChatHandler:
        return self._anthropic if "anthropic-version" in request.headers else self._openai

    async def _visible(self, request: web.Request) -> list[str]:
        """The aliases this caller may use (authenticated first: a caller without a key
        cannot find out which exist)."""
        ctx = CallContext(credential=presented_key(request.headers), caller="http")
        await self._engine.authenticate(ctx)
        aliases = self._engine.aliases()
        scope = ctx.identity.aliases if ctx.identity is not None else None
        return aliases if scope is None else [a for a in aliases if a in scope]
