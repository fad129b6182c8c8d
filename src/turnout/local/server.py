"""The embedded local model: llama.cpp's OpenAI-compatible server, run in-process.

`xllamacpp.Server(params)` loads the model and starts llama.cpp's HTTP server on its own
threads; dropping the object stops it. We load it in a worker thread so the event loop
never blocks, then poll `/health` until the server answers. The gateway talks to it over
loopback HTTP with the ordinary `openai_chat` dialect, like any other upstream.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from turnout.core.errors import ServiceUnavailable

_log = logging.getLogger("turnout.local")


@dataclass(frozen=True, slots=True)
class LocalServerSettings:
    """Everything that determines a local server's behaviour. Two servers with equal
    settings are interchangeable, so a config reload can keep a running one."""

    model_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    """As requested: 0 means a free port picked at construction."""
    n_ctx: int = 4096
    n_parallel: int = 2
    threads: int | None = None
    model_alias: str | None = None
    start_mode: Literal["lazy", "startup"] = "lazy"
    """When the gateway should load it: on first request, or when the gateway starts."""


_LAUNCH_ATTEMPTS = 4
_LAUNCH_RETRY_DELAY_S = 0.25


def _free_port(host: str) -> int:
    # Bind-and-release: the port could be taken before llama.cpp binds it, but on loopback
    # that race is rare and it lets base_url be known before the model loads.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalModelServer:
    """One GGUF model served by llama.cpp on a loopback port.

    `start()` is idempotent and safe to call concurrently: every caller awaits the same
    load. A failed start leaves `status` as `"failed: ..."`; the next `start()` tries again.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        n_ctx: int = 4096,
        n_parallel: int = 2,
        threads: int | None = None,
        model_alias: str | None = None,
        start_mode: Literal["lazy", "startup"] = "lazy",
        startup_timeout_s: float = 120.0,
        verbosity: int = 0,
    ) -> None:
        self.settings = LocalServerSettings(
            model_path=Path(model_path), host=host, port=port, n_ctx=n_ctx,
            n_parallel=n_parallel, threads=threads, model_alias=model_alias,
            start_mode=start_mode)
        self.port = port or _free_port(host)
        self.api_key = secrets.token_urlsafe(24)
        """A per-process key so other local users cannot borrow the model."""
        self._startup_timeout_s = startup_timeout_s
        self._verbosity = verbosity
        self._server: Any = None
        self._status = "stopped"
        self._starting: asyncio.Task[None] | None = None

    @property
    def start_mode(self) -> Literal["lazy", "startup"]:
        return self.settings.start_mode

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, known before the server starts."""
        return f"http://{self.settings.host}:{self.port}/v1"

    @property
    def ready(self) -> bool:
        return self._status == "ready"

    @property
    def status(self) -> str:
        """`stopped`, `starting`, `ready` or `failed: <reason>`."""
        return self._status

    def __repr__(self) -> str:
        name = self.settings.model_path.name
        return f"LocalModelServer({name!r}, {self.base_url}, {self._status})"

    async def start(self) -> None:
        """Load the model and wait until it serves. Raises `ServiceUnavailable` on failure."""
        if self.ready:
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._start())
            # Retrieve the outcome even if every waiter was cancelled, so a failure is
            # never reported as an unretrieved task exception.
            self._starting.add_done_callback(_consume)
        # Shield: one cancelled caller must not abort the load the others are waiting on.
        await asyncio.shield(self._starting)

    async def ensure_started(self) -> None:
        """Start the server if it is not serving yet (the lazy path, on first request)."""
        if not self.ready:
            await self.start()

    async def stop(self) -> None:
        """Stop serving and free the model. Safe to call at any time, more than once."""
        starting = self._starting
        if starting is not None and not starting.done():
            # Bounded: a native init that never returns must not hang a shutdown too.
            with suppress(Exception):
                await asyncio.wait_for(asyncio.shield(starting), self._startup_timeout_s)
        self._starting = None
        self._status = "stopped"
        if self._server is not None:
            box = [self._server]
            self._server = None
            # llama.cpp joins its threads on destruction; do it off the event loop, and
            # make sure the last reference dies in the worker thread.
            await asyncio.to_thread(box.clear)

    async def _start(self) -> None:
        self._status = "starting"
        path = self.settings.model_path
        try:
            if not path.is_file():
                raise FileNotFoundError(f"model file not found: {path}")
            server = await self._launch()
        except Exception as exc:
            raise self._failed(f"local model {path.name} failed to start", exc) from None
        self._server = server
        try:
            await self._wait_healthy()
        except Exception as exc:
            box = [self._server]
            self._server = None
            await asyncio.to_thread(box.clear)
            raise self._failed(f"local model {path.name} did not become healthy", exc) from None
        self._status = "ready"

    def _failed(self, what: str, exc: Exception) -> ServiceUnavailable:
        """The error for a failed start. The cause (llama.cpp's or the OS's text, with
        server paths) is for the operator: in `status` and the log, not in what a client
        is told."""
        self._status = f"failed: {exc}"
        _log.warning("%s: %s: %s", what, type(exc).__name__, exc)
        return ServiceUnavailable(what, origin="upstream")

    async def _launch(self) -> Any:
        """Create the llama.cpp server. Its init can fail transiently right after a stop
        (the old listening socket or model memory not yet released), so a failed init is
        tried again a few times before the failure counts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout_s
        for attempt in range(_LAUNCH_ATTEMPTS):
            try:
                # Importing xllamacpp and loading the model both block: off the loop. The
                # wait is bounded: llama.cpp's init has been seen to hang (never return)
                # when its port was taken under load; the start then fails instead of
                # hanging every request and the shutdown (the stuck thread is left behind).
                return await asyncio.wait_for(
                    asyncio.to_thread(lambda: _new_server(self._params())),
                    max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise TimeoutError(f"llama.cpp did not start within "
                                   f"{self._startup_timeout_s:g}s") from None
            except Exception:
                if attempt == _LAUNCH_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(_LAUNCH_RETRY_DELAY_S * (attempt + 1))
        raise AssertionError("unreachable")

    def _params(self) -> Any:
        import xllamacpp  # heavy native module: loaded only when a model actually starts

        s = self.settings
        params = xllamacpp.CommonParams()
        params.model.path = str(s.model_path)
        params.n_ctx = s.n_ctx
        params.n_parallel = s.n_parallel
        # One KV pool shared by all slots, so each request may use the whole n_ctx instead
        # of n_ctx / n_parallel.
        params.kv_unified = True
        params.port = self.port
        params.hostnames = [s.host]
        params.api_keys = [self.api_key]
        params.ui = False
        params.endpoint_metrics = False
        params.verbosity = self._verbosity
        if s.model_alias:
            params.model_alias = {s.model_alias}
        if s.threads:
            params.cpuparams.n_threads = s.threads
            params.cpuparams_batch.n_threads = s.threads
        return params

    async def _wait_healthy(self) -> None:
        url = f"http://{self.settings.host}:{self.port}/health"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout_s
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                with suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                if loop.time() >= deadline:
                    raise TimeoutError(f"no healthy answer from {url} "
                                       f"within {self._startup_timeout_s:g}s")
                # llama.cpp answers 503 while loading; poll gently.
                await asyncio.sleep(0.05)


def _new_server(params: Any) -> Any:
    import xllamacpp

    return xllamacpp.Server(params)


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
