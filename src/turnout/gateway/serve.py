"""Running a gateway application until SIGTERM or SIGINT, then draining it.

Replaces `web.run_app`, whose shutdown closes the listening socket and the idle connections
at once, then gives handlers `shutdown_timeout` and cancels them: long streams ended with a
broken chunked body and requests not yet answered with a bare disconnect. Here the signal
starts the gateway's `Drain` (see `turnout.gateway.drain`) and only then is the runner
cleaned up, when nothing is left in flight. A second signal cuts the drain short.
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from turnout.gateway.drain import DRAIN

CLOSE_TIMEOUT_S = 2.0
"""aiohttp's own shutdown timeout, once the drain is over: only a handler stuck writing to
a client that stopped reading can still be running then."""

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve_gateway(app: web.Application, host: str, port: int, *,
                        drain_timeout_s: float) -> None:
    """Serve `app` (built by `create_gateway`) on `host:port` until SIGTERM or SIGINT, then
    drain it for up to `drain_timeout_s` and stop."""
    # handler_cancellation: a client that disconnects cancels its upstream call.
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           handler_cancellation=True, shutdown_timeout=CLOSE_TIMEOUT_S)
    await runner.setup()
    loop = asyncio.get_running_loop()
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        await web.TCPSite(runner, host, port).start()
        await stop.wait()
        await app[DRAIN].run(drain_timeout_s, hurry)
    finally:
        await runner.cleanup()
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)


def run_gateway(app: web.Application, host: str, port: int, *,
                drain_timeout_s: float) -> None:
    """`serve_gateway` on a new event loop (uvloop's, when it was installed)."""
    asyncio.run(serve_gateway(app, host, port, drain_timeout_s=drain_timeout_s))
