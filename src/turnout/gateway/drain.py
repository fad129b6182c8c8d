"""Graceful shutdown: stop taking work, let what is in flight finish, then end the rest
cleanly.

On a shutdown signal the gateway turns unready (`/readyz` 503) and answers new chat
requests with the dialect's 503 and `Retry-After` (on a connection it then closes), so a
load balancer and SDK retries move them to another replica. The listening socket stays open
meanwhile: closing it would reset connections still in the kernel's backlog without an
answer, and `/readyz` must stay reachable. Requests in flight get up to the drain deadline
(`server.drain_timeout_s`) to finish. After it, each one is cancelled the way a client
disconnect cancels it (so its upstream call is cancelled too) and answered instead of
dropped: a stream whose first byte went out ends with the dialect's terminal error event;
a request not answered yet gets the dialect's 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from turnout.core.errors import ServiceUnavailable
from turnout.engine.context import CallContext

_log = logging.getLogger("turnout.gateway")

RETRY_AFTER_S = 1.0
"""`Retry-After` of a request refused or cut by a shutdown: another replica, or this one
restarted, can take it at once."""

EXPIRY_GRACE_S = 5.0
"""After the deadline, how long the cut requests get to write their last bytes (a client
that stopped reading could otherwise hold the shutdown)."""


def shutting_down() -> ServiceUnavailable:
    """The error that requests refused or cut by a shutdown get."""
    return ServiceUnavailable("The gateway is shutting down; retry the request.",
                              retry_after=RETRY_AFTER_S)


class Ticket:
    """One request in flight, as the drain sees it: the task serving it, and its call
    context once there is one (so that the call is reported as cut, not abandoned)."""

    __slots__ = ("ctx", "expired", "task")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.ctx: CallContext | None = None
        self.expired = False

    def absorb_cancel(self) -> bool:
        """Call when the request's task is cancelled. True when the drain deadline did it,
        and nobody else (a client disconnect) cancelled it as well: the cancellation is
        then undone, and the handler answers instead of unwinding."""
        if not self.expired or self.task is None:
            return False
        self.expired = False
        return self.task.uncancel() == 0


class Drain:
    """The graceful shutdown of one gateway: which requests are in flight, and whether the
    gateway is draining. Handlers `enter()` and `leave()` it around each request."""

    __slots__ = ("_idle", "_tickets", "draining")

    def __init__(self) -> None:
        self.draining = False
        """True from the shutdown signal on: new requests are refused, `/readyz` is 503."""
        self._tickets: set[Ticket] = set()
        self._idle: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Requests being served now."""
        return len(self._tickets)

    def enter(self) -> Ticket:
        """Register the current request (its task is what the deadline cancels)."""
        ticket = Ticket(asyncio.current_task())
        self._tickets.add(ticket)
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """The request is answered (or abandoned)."""
        self._tickets.discard(ticket)
        if self._idle is not None and not self._tickets:
            self._idle.set()

    def begin(self) -> None:
        """Stop taking new requests (they get 503) and turn unready."""
        self.draining = True
        if self._idle is None:
            self._idle = asyncio.Event()
            if not self._tickets:
                self._idle.set()

    def expire(self) -> int:
        """Cut every request still in flight (see the module docs); returns how many."""
        error = shutting_down()
        tickets = [t for t in self._tickets if t.task is not None and not t.task.done()]
        for ticket in tickets:
            ticket.expired = True
            if ticket.ctx is not None:
                ticket.ctx.abort = error
            assert ticket.task is not None
            ticket.task.cancel()
        return len(tickets)

    async def run(self, timeout_s: float, hurry: asyncio.Event | None = None) -> int:
        """The whole drain: begin, wait up to `timeout_s` for requests in flight (less if
        `hurry` is set, e.g. by a second signal), then cut the rest and give them a moment
        to write their last bytes. Returns how many requests were cut."""
        self.begin()
        if self._tickets:
            _log.warning("draining %d requests in flight (up to %g s)", len(self._tickets),
                         timeout_s)
            await self._wait_idle(timeout_s, hurry)
        cut = self.expire()
        if cut:
            _log.warning("drain deadline: cut %d requests still in flight", cut)
            await self._wait_idle(EXPIRY_GRACE_S, None)
        return cut

    async def _wait_idle(self, timeout_s: float, hurry: asyncio.Event | None) -> None:
        assert self._idle is not None
        waiters = {asyncio.ensure_future(self._idle.wait())}
        if hurry is not None:
            waiters.add(asyncio.ensure_future(hurry.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter


DRAIN = web.AppKey("drain", Drain)
"""Where a gateway application keeps its `Drain`."""
