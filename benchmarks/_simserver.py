"""Benchmark simulator process: one or more simulators in one uvloop process.

    python benchmarks/_simserver.py openai_chat:primary anthropic_messages:other ...

Every simulator listens on its own free loopback port with `record_requests=False` (no
growing request log on the hot path). A small middleware counts chat requests as they
arrive, before any fault is applied, so that chaos runs can compute upstream attempts per
client request; `GET /_bench/count` reads the counter and `DELETE /_bench/count` zeroes it.
Once every simulator listens, one JSON line `{"name": "http://127.0.0.1:PORT", ...}` is
printed on stdout; the process then runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable

import orjson
import uvloop
from aiohttp import web

from turnout.sim.app import create_simulator_app

_COUNTER = web.AppKey("bench_counter", list)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _counting_app(dialect: str, name: str, chunk_words: int) -> web.Application:
    app: web.Application = create_simulator_app(dialect, name, record_requests=False,
                                                chunk_words=chunk_words)
    counter: list[int] = [0]
    app[_COUNTER] = counter

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Control routes (/_sim, /_bench) are not upstream attempts.
        if not request.path.startswith("/_"):
            counter[0] += 1
        return await handler(request)

    async def read(request: web.Request) -> web.Response:
        return web.json_response({"count": counter[0]})

    async def zero(request: web.Request) -> web.Response:
        counter[0] = 0
        return web.json_response({"count": 0})

    app.middlewares.append(count)
    app.router.add_get("/_bench/count", read)
    app.router.add_delete("/_bench/count", zero)
    return app


async def _serve(specs: list[tuple[str, str]], chunk_words: int) -> None:
    runners: list[web.AppRunner] = []
    urls: dict[str, str] = {}
    try:
        for dialect, name in specs:
            app = _counting_app(dialect, name, chunk_words)
            # handler_cancellation: a gateway that gives up on a hung request frees it here.
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                   shutdown_timeout=0.5)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
            await site.start()
            urls[name] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        sys.stdout.write(orjson.dumps(urls).decode() + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()


def main(argv: list[str]) -> int:
    chunk_words = 1
    specs: list[tuple[str, str]] = []
    for arg in argv:
        if arg.startswith("--chunk-words="):
            chunk_words = int(arg.split("=", 1)[1])
            continue
        dialect, _, name = arg.partition(":")
        specs.append((dialect, name or dialect))
    if not specs:
        print(__doc__, file=sys.stderr)
        return 2
    uvloop.run(_serve(specs, chunk_words))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
