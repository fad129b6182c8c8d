"""One pooled aiohttp session for every upstream call; network failures mapped once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import NoReturn

import aiohttp

from turnout.core.errors import ConnectionFailed, TurnoutError, UpstreamTimeout
from turnout.dialects.base import HttpRequest


class HttpTransport:
    """Pooled HTTP client. Create inside a running event loop; `close()` when done.

    One `aiohttp.ClientSession` serves every upstream: its connector pools keep-alive
    connections per host, which is what makes proxying cheap (DESIGN: aiohttp measured
    ~10x httpx here). Total and per-read timeouts are applied by the caller with
    `asyncio.timeout`, because deadlines span more than one HTTP exchange.
    """

    def __init__(self, *, pool_size: int = 1024, connect_timeout_s: float = 5.0) -> None:
        self._pool_size = pool_size
        self._connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=0, ttl_dns_cache=300,
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout_s),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(
        self, request: HttpRequest, *, connect_timeout_s: float | None = None
    ) -> aiohttp.ClientResponse:
        """Send and return once headers arrived. The caller must release the response."""
        timeout = None
        if connect_timeout_s is not None and connect_timeout_s != self._connect_timeout_s:
            # Built only when it differs from the session's: requests mostly share one value.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
        for attempt in (1, 2):
            try:
                return await self.session.request(
                    request.method, request.url, data=request.body, headers=request.headers,
                    timeout=timeout if timeout is not None else aiohttp.helpers.sentinel,
                    allow_redirects=False,
                )
            except aiohttp.ServerDisconnectedError as exc:
                # A pooled keep-alive connection the server had already closed (llama.cpp
                # does after streams): nothing was answered, so one fresh try is safe and
                # is not an upstream failure.
                if attempt == 2:
                    raise map_network_error(exc) from exc
            except BaseException as exc:
                _raise_mapped(exc)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def map_network_error(exc: BaseException, *, reading_body: bool = False) -> BaseException:
    """Translate aiohttp/asyncio failures into the taxonomy; anything else passes through
    unchanged (cancellation above all). `reading_body`: the failure came after the response
    headers.

    Messages are the gateway's own words: a client learns nothing from aiohttp's
    `TransferEncodingError: 400, message='Not enough data...'`, and library text may
    quote a URL. Raise the result `from exc`, so that the caller can log the library's
    detail (`engine.upstream` does, with the request id)."""
    if isinstance(exc, TurnoutError | asyncio.CancelledError):
        return exc
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return UpstreamTimeout("connecting to the upstream timed out", origin="upstream")
        return UpstreamTimeout("the upstream timed out", origin="upstream")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ConnectionFailed(_connection_failure(exc, reading_body), origin="upstream")
    return exc


def _connection_failure(exc: aiohttp.ClientError | OSError, reading_body: bool) -> str:
    if reading_body or isinstance(exc, aiohttp.ClientPayloadError):
        return "the upstream connection closed before the response was complete"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "could not connect to the upstream"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the upstream closed the connection without answering"
    if isinstance(exc, aiohttp.InvalidURL):
        return "the upstream URL is not valid"
    return "the connection to the upstream failed before it answered"


async def iter_body(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The response body as it arrives, with network failures mapped."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except BaseException as exc:
        _raise_mapped(exc, reading_body=True)


async def read_body(response: aiohttp.ClientResponse) -> bytes:
    """The whole response body, with network failures mapped."""
    try:
        return await response.read()
    except BaseException as exc:
        _raise_mapped(exc, reading_body=True)


def _raise_mapped(exc: BaseException, *, reading_body: bool = False) -> NoReturn:
    mapped = map_network_error(exc, reading_body=reading_body)
    if mapped is exc:  # cancellation and the like: as it was, not chained to itself
        raise exc
    raise mapped from exc


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
