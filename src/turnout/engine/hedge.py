"""Hedged requests: a second attempt when the first is slow to answer; first answer wins."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def race_with_hedge(
    primary: Callable[[], Awaitable[T]],
    hedge: Callable[[], Awaitable[T]],
    delay: float,
    admit_hedge: Callable[[], bool],
    sleep: Callable[[float], Awaitable[Any]],
    dispose: Callable[[T], None] | None = None,
) -> tuple[int, T]:
    """Run `primary`; if it has not finished after `delay` seconds and `admit_hedge()`
    agrees (hedge budget, breaker), also run `hedge`. Returns (0 or 1, value) of the first
    to succeed and cancels the other; a failure waits for the other attempt. Raises the
    last error when both fail. A loser that succeeded in the same instant is `dispose`d."""
    first = asyncio.ensure_future(primary())
    timer = asyncio.ensure_future(sleep(delay))
    tasks: dict[asyncio.Future[T], int] = {first: 0}
    try:
        await asyncio.wait({first, timer}, return_when=asyncio.FIRST_COMPLETED)
        if first.done() or not admit_hedge():
            return 0, await first
        tasks[asyncio.ensure_future(hedge())] = 1
        pending: set[asyncio.Future[T]] = set(tasks)
        error: BaseException | None = None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            winners = [t for t in done if t.exception() is None]
            if winners:
                winner = winners[0]
                for loser in winners[1:]:
                    if dispose is not None:
                        dispose(loser.result())
                return tasks[winner], winner.result()
            error = next(iter(done)).exception()
        assert error is not None
        raise error
    finally:
        timer.cancel()
        losers = [t for t in tasks if not t.done()]
        for task in losers:
            task.cancel()
        if losers:
            await asyncio.gather(*losers, return_exceptions=True)
