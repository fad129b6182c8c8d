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
    last error when both fail. Every value that is not returned (a loser that succeeded in
    the same instant, or any value when this call is cancelled) is `dispose`d."""
    first = asyncio.ensure_future(primary())
    timer = asyncio.ensure_future(sleep(delay))
    tasks: dict[asyncio.Future[T], int] = {first: 0}
    kept: list[asyncio.Future[T]] = []  # the task whose value goes to the caller
    try:
        await asyncio.wait({first, timer}, return_when=asyncio.FIRST_COMPLETED)
        if first.done() or not admit_hedge():
            # Not `await first`: a cancellation landing just as it finished would lose the
            # value. `asyncio.wait` leaves the task alone; `_settle` cancels or disposes it.
            await asyncio.wait({first})
            kept.append(first)
            return 0, first.result()
        tasks[asyncio.ensure_future(hedge())] = 1
        pending: set[asyncio.Future[T]] = set(tasks)
        error: BaseException | None = None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            winners = [t for t in done if _succeeded(t)]
            if winners:
                kept.append(winners[0])
                return tasks[winners[0]], winners[0].result()
            # A task cancelled on its own (not by us) failed like any other attempt.
            last = next(iter(done))
            error = asyncio.CancelledError() if last.cancelled() else last.exception()
        assert error is not None
        raise error
    finally:
        timer.cancel()
        await _settle(list(tasks), kept, dispose)


async def _settle(tasks: list[asyncio.Future[T]], kept: list[asyncio.Future[T]],
                  dispose: Callable[[T], None] | None) -> None:
    """Cancel the attempts still running and wait for them to end; then dispose of every
    value nobody will use: a loser that succeeded anyway, and the winner's too when this
    wait is cancelled (the caller is gone, so nobody would release what it holds)."""
    running = [t for t in tasks if not t.done()]
    for task in running:
        task.cancel()
    try:
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    except BaseException:
        kept.clear()
        raise
    finally:
        if dispose is not None:
            for task in tasks:
                if task not in kept and _succeeded(task):
                    dispose(task.result())


def _succeeded(task: asyncio.Future[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
