"""JSON errors for requests no route serves (unknown path: 404, wrong method: 405), in the
error shape of the dialect the client most likely speaks (under `/admin/`, the admin
API's `{"error": {"type", "message"}}`), instead of aiohttp's plain-text
pages that SDKs cannot parse.

Done with routes rather than a middleware so that matched requests pay nothing: a path's
`*` fallback is reached only when none of its real routes takes the method, and the
catch-all only when no other path matches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from turnout.core.errors import InvalidRequest, NotFound, TurnoutError
from turnout.dialects.base import Dialect

_ANTHROPIC_PATHS = ("/v1/messages",)
_ADMIN_PREFIX = "/admin/"
_ADMIN_KINDS = {404: "not_found", 405: "method_not_allowed"}


def add_json_fallbacks(app: web.Application, openai: Dialect, anthropic: Dialect) -> None:
    """Give every registered path a 405 fallback and add a 404 catch-all. Call it after the
    last route is added (paths added later get the 404 catch-all, not a 405)."""

    def respond(request: web.Request, error: TurnoutError,
                headers: dict[str, str] | None = None) -> web.Response:
        if request.path.startswith(_ADMIN_PREFIX):  # the admin API's one error shape
            body = {"error": {"type": _ADMIN_KINDS.get(error.status, "invalid_request"),
                              "message": error.message}}
            return web.Response(status=error.status, body=orjson.dumps(body),
                                content_type="application/json", headers=headers)
        # Anthropic SDKs always send `anthropic-version`; everything else gets OpenAI's shape.
        speaks_anthropic = ("anthropic-version" in request.headers
                            or request.path.startswith(_ANTHROPIC_PATHS))
        dialect = anthropic if speaks_anthropic else openai
        status, error_headers, body = dialect.encode_error(error)
        return web.Response(status=status, body=orjson.dumps(body),
                            content_type="application/json",
                            headers={**error_headers, **(headers or {})})

    def method_not_allowed(allowed: list[str]) -> Callable[[web.Request],
                                                           Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            error = InvalidRequest(f"Method {request.method} is not allowed on "
                                   f"{request.path}; allowed: {', '.join(allowed)}.")
            error.status, error.code = 405, "method_not_allowed"
            return respond(request, error, {"Allow": ", ".join(allowed)})
        return handler

    async def not_found(request: web.Request) -> web.Response:
        return respond(request, NotFound(f"Unknown path: {request.method} {request.path}"))

    for resource in list(app.router.resources()):
        if not isinstance(resource, web.Resource):
            continue
        methods = sorted({route.method for route in resource})
        if "*" not in methods:
            resource.add_route("*", method_not_allowed(methods))
    app.router.add_route("*", "/{path:.*}", not_found)
