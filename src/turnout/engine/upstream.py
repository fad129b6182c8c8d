"""One attempt against one deployment: build, send, decode, with per-attempt deadlines.

This is where upstream errors enter the engine, so it is the one place they are cleaned:
every error leaving `UpstreamCaller` or `UpstreamStream` is attributed to its deployment
and scrubbed of the config's secrets (`Deployment.scrubber`), and the library exception
behind a network failure is logged here and dropped. What the engine, the client and the
logs see afterwards is only the gateway's own words and the upstream's scrubbed message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from turnout.core.errors import ConnectionFailed, MalformedResponse, TurnoutError, UpstreamTimeout
from turnout.core.events import StreamEvent
from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse
from turnout.dialects.base import Dialect, StreamDecoder
from turnout.dialects.registry import get_dialect
from turnout.engine.requirements import fit_output
from turnout.providers.types import Deployment
from turnout.transport.http import HttpTransport, map_network_error, read_body
from turnout.transport.sse import SSEParser

_log = logging.getLogger("turnout.upstream")


@dataclass(frozen=True, slots=True)
class AttemptTimeouts:
    """Deadlines of one attempt, in seconds (None: no limit)."""

    connect_s: float | None = 5.0
    ttft_s: float | None = 30.0
    """Streams only: time from sending to the response headers and on to the first chunk.
    Not applied to non-stream calls: providers send their headers only once the whole
    answer is ready, so it would cap every long answer at the time to first token."""
    idle_s: float | None = 30.0
    """Longest silence between two chunks of a stream."""
    total_s: float | None = 120.0
    """The whole attempt of a non-stream call (headers and body); the wait for the first
    chunk of a stream is also bounded by it."""


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
        self, deployment: Deployment, request: ChatRequest, timeouts: AttemptTimeouts,
        request_id: str = "",
    ) -> tuple[ChatResponse, Mapping[str, str]]:
        """A non-stream call. Raises a `TurnoutError` for every failure. `request_id` names
        the client request in log lines."""
        try:
            return await self._complete(deployment, request, timeouts)
        except TurnoutError as error:
            raise _entering(error, deployment, request_id) from None

    async def _complete(
        self, deployment: Deployment, request: ChatRequest, timeouts: AttemptTimeouts
    ) -> tuple[ChatResponse, Mapping[str, str]]:
        dialect = self.dialect(deployment.dialect)
        http = dialect.build_request(fit_output(request, deployment), deployment.target)
        try:
            async with asyncio.timeout(timeouts.total_s):
                response = await self.transport.send(http, connect_timeout_s=timeouts.connect_s)
                try:
                    body = await read_body(response)
                finally:
                    response.release()
        except TimeoutError:
            raise UpstreamTimeout(
                f"{deployment.id} did not answer within {timeouts.total_s}s", origin="upstream"
            ) from None
        headers = response.headers
        if response.status >= 400:
            raise dialect.decode_error(response.status, headers, body)
        return dialect.decode_response(body), headers

    async def open_stream(
        self, deployment: Deployment, request: ChatRequest, timeouts: AttemptTimeouts,
        request_id: str = "",
    ) -> UpstreamStream:
        """Send a stream request and return once the response headers arrived (status
        checked). Reading events is bounded by TTFT, then idle timeouts."""
        try:
            return await self._open_stream(deployment, request, timeouts, request_id)
        except TurnoutError as error:
            raise _entering(error, deployment, request_id) from None

    async def _open_stream(
        self, deployment: Deployment, request: ChatRequest, timeouts: AttemptTimeouts,
        request_id: str,
    ) -> UpstreamStream:
        dialect = self.dialect(deployment.dialect)
        http = dialect.build_request(fit_output(request, deployment), deployment.target)
        first_limit = _min(timeouts.ttft_s, timeouts.total_s)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(first_limit):
                response = await self.transport.send(http, connect_timeout_s=timeouts.connect_s)
        except TimeoutError:
            raise UpstreamTimeout(
                f"{deployment.id} sent no response headers within {first_limit}s",
                origin="upstream",
            ) from None
        if response.status >= 400:
            try:
                body = await read_body(response)
            finally:
                response.release()
            raise dialect.decode_error(response.status, response.headers, body)
        remaining = None if first_limit is None else max(0.0, first_limit - (loop.time() - started))
        return UpstreamStream(deployment, response, dialect.stream_decoder(), remaining,
                              timeouts.idle_s, request_id)


class UpstreamStream:
    """Canonical events of one upstream stream. `first_timeout` bounds the wait for the first
    chunk, `idle_timeout` every later wait. Always `close()` it (or exhaust it)."""

    def __init__(
        self, deployment: Deployment, response: aiohttp.ClientResponse, decoder: StreamDecoder,
        first_timeout: float | None, idle_timeout: float | None, request_id: str = "",
    ) -> None:
        self.deployment = deployment
        self.request_id = request_id
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
                except TimeoutError:
                    phase = "between chunks" if self._seen_data else "before the first chunk"
                    raise UpstreamTimeout(
                        f"{self.deployment.id} stalled {phase} (> {self._timeout}s)",
                        origin="upstream",
                    ) from None
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
        except TurnoutError as error:
            raise _entering(error, self.deployment, self.request_id) from None
        except (aiohttp.ClientError, OSError) as exc:
            mapped = map_network_error(exc, reading_body=True)
            assert isinstance(mapped, TurnoutError)  # every ClientError and OSError maps
            raise _entering(mapped, self.deployment, self.request_id, exc) from None
        finally:
            self.close()

    def close(self) -> None:
        # Closing (not releasing) drops a half-read connection instead of reusing it.
        if not self.response.closed:
            self.response.close()


def _entering(error: TurnoutError, deployment: Deployment, request_id: str,
              cause: BaseException | None = None) -> TurnoutError:
    """`error` as it enters the engine from `deployment`: attributed, scrubbed of secrets,
    and rid of the library exception behind it (`cause`, else its chained one), which is
    logged instead: its text means nothing to a client, and an orjson error even holds the
    whole upstream body."""
    if cause is None:
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None and not isinstance(cause, TurnoutError):
        network = isinstance(error, ConnectionFailed | UpstreamTimeout)
        scrub = deployment.scrubber.scrub
        _log.log(logging.INFO if network else logging.DEBUG,
                 "request %s: %s failed: %s (%s: %s)", request_id or "-", deployment.id,
                 scrub(error.message), type(cause).__name__, scrub(str(cause)))
    error.__cause__ = error.__context__ = None
    if error.provider is None:
        error.provider = deployment.id
    if isinstance(error, MalformedResponse):
        error.origin = "upstream"
    return deployment.scrubber.scrub_error(error)


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
