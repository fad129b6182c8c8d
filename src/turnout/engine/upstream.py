"""One attempt against one deployment: build, send, decode, with per-attempt deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from turnout.core.errors import MalformedResponse, TurnoutError, UpstreamTimeout
from turnout.core.events import StreamEvent
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse
from turnout.dialects.base import Dialect, StreamDecoder
from turnout.dialects.registry import get_dialect
from turnout.engine.requirements import fit_output
from turnout.providers.types import Deployment
from turnout.transport.http import HttpTransport, map_network_error, read_body
from turnout.transport.sse import SSEParser


@dataclass(frozen=True, slots=True)
class AttemptTimeouts:
    """Deadlines of one attempt, in seconds (None: no limit)."""

    connect_s: float | None = 5.0
    ttft_s: float | None = 30.0
    """Time from sending to the first streamed chunk (streams) or to headers."""
    idle_s: float | None = 30.0
    """Longest silence between two chunks of a stream."""
    total_s: float | None = 120.0
    """The whole attempt, non-stream; the wait for the first chunk of a stream is also
    bounded by it."""


class UpstreamCaller:
    """Calls deployments through their dialect over the shared transport."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport
        self._dialects: dict[str, Dialect] = {}

    def dialect(self, name: str) -> Dialect:
        dialect = self._dialects.get(name)
        if dialect is None:
            dialect = self._dialects[name] = get_dialect(name)
        return dialect

    async def complete(
        self, deployment: Deployment, request: ChatRequest, timeouts: AttemptTimeouts
    ) -> tuple[ChatResponse, Mapping[str, str]]:
        """A non-stream call. Raises a `TurnoutError` for every failure."""
        dialect = self.dialect(deployment.dialect)
        http = dialect.build_request(fit_output(request, deployment), deployment.target)
        try:
            async with asyncio.timeout(timeouts.total_s):
                response = await self.transport.send(http, connect_timeout_s=timeouts.connect_s)
                try:
                    body = await read_body(response)
                finally:
                    response.release()
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{deployment.id} did not answer within {timeouts.total_s}s", origin="upstream"
            ) from exc
        headers = response.headers
        if response.status >= 400:
            raise _with_provider(dialect.decode_error(response.status, headers, body), deployment)
        try:
            return dialect.decode_response(body), headers
        except TurnoutError as exc:
            raise _with_provider(exc, deployment) from None

    async def open_stream(
        self, deployment: Deployment, request: ChatRequest, timeouts: AttemptTimeouts
    ) -> UpstreamStream:
        """Send a stream request and return once the response headers arrived (status
        checked). Reading events is bounded by TTFT, then idle timeouts."""
        dialect = self.dialect(deployment.dialect)
        http = dialect.build_request(fit_output(request, deployment), deployment.target)
        first_limit = _min(timeouts.ttft_s, timeouts.total_s)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(first_limit):
                response = await self.transport.send(http, connect_timeout_s=timeouts.connect_s)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{deployment.id} sent no response headers within {first_limit}s",
                origin="upstream",
            ) from exc
        if response.status >= 400:
            try:
                body = await read_body(response)
            finally:
                response.release()
            raise _with_provider(
                dialect.decode_error(response.status, response.headers, body), deployment
            )
        remaining = None if first_limit is None else max(0.0, first_limit - (loop.time() - started))
        return UpstreamStream(deployment, response, dialect.stream_decoder(), remaining,
                              timeouts.idle_s)


class UpstreamStream:
    """Canonical events of one upstream stream. `first_timeout` bounds the wait for the first
    chunk, `idle_timeout` every later wait. Always `close()` it (or exhaust it)."""

    def __init__(
        self, deployment: Deployment, response: aiohttp.ClientResponse, decoder: StreamDecoder,
        first_timeout: float | None, idle_timeout: float | None,
    ) -> None:
        self.deployment = deployment
        self.response = response
        self.headers: Mapping[str, str] = response.headers
        self._decoder = decoder
        self._parser = SSEParser()
        self._timeout = first_timeout
        self._idle = idle_timeout
        self._seen_data = False

    async def batches(self) -> AsyncIterator[list[StreamEvent]]:
        """Canonical events, one non-empty list per network read: a relay can then send
        what one read brought in a single write."""
        content = self.response.content
        try:
            while True:
                try:
                    async with asyncio.timeout(self._timeout):
                        chunk = await content.readany()
                except TimeoutError as exc:
                    phase = "between chunks" if self._seen_data else "before the first chunk"
                    raise UpstreamTimeout(
                        f"{self.deployment.id} stalled {phase} (> {self._timeout}s)",
                        origin="upstream",
                    ) from exc
                if not chunk:
                    break
                self._seen_data = True
                self._timeout = self._idle
                batch: list[StreamEvent] = []
                try:
                    for sse in self._parser.feed(chunk):
                        batch += self._decoder.feed(sse)
                except TurnoutError:
                    if batch:  # events decoded before the error still go out first
                        yield batch
                    raise
                if batch:
                    yield batch
            batch = []
            try:
                for sse in self._parser.flush():
                    batch += self._decoder.feed(sse)
                batch += self._decoder.close()
            except TurnoutError:
                if batch:
                    yield batch
                raise
            if batch:
                yield batch
        except TurnoutError as exc:
            raise _with_provider(exc, self.deployment) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _with_provider(map_network_error(exc), self.deployment) from exc  # type: ignore[arg-type]
        finally:
            self.close()

    def close(self) -> None:
        # Closing (not releasing) drops a half-read connection instead of reusing it.
        if not self.response.closed:
            self.response.close()


def _with_provider(error: TurnoutError, deployment: Deployment) -> TurnoutError:
    if error.provider is None:
        error.provider = deployment.id
    if isinstance(error, MalformedResponse):
        error.origin = "upstream"
    return error


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
