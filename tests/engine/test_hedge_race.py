"""`race_with_hedge`: every value that is not handed to the caller is disposed, whatever
cancellation lands where; an attempt cancelled on its own is just a failed attempt."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from turnout.engine.hedge import race_with_hedge


async def instant(_: float) -> None:
    return None


def admit() -> bool:
    return True


def never() -> bool:
    return False


async def test_winner_is_disposed_when_the_caller_leaves_while_the_loser_winds_down(
) -> None:
    """The hedge wins; the primary takes a moment to end after its cancellation; the
    caller is cancelled meanwhile: the winner's value has nobody left to release it."""
    disposed: list[str] = []
    started, stopping, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def primary() -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await release.wait()  # e.g. closing a connection
            raise
        return "primary"

    async def hedge() -> str:
        await started.wait()
        return "hedge"

    race = asyncio.ensure_future(
        race_with_hedge(primary, hedge, 0.0, admit, instant, disposed.append))
    await stopping.wait()
    race.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await race
    assert disposed == ["hedge"]


async def test_a_loser_that_succeeds_despite_its_cancellation_is_disposed() -> None:
    disposed: list[str] = []
    started = asyncio.Event()

    async def primary() -> str:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return "primary"  # finished its answer anyway

    async def hedge() -> str:
        await started.wait()
        return "hedge"

    assert await race_with_hedge(primary, hedge, 0.0, admit, instant,
                                 disposed.append) == (1, "hedge")
    assert disposed == ["primary"]


async def test_the_primary_is_disposed_when_the_caller_leaves_as_it_finishes() -> None:
    """Not hedged (the budget said no): the primary's answer arrives in the same loop turn
    as the caller's cancellation, which wins; the answer must not be dropped."""
    disposed: list[str] = []
    go = asyncio.Event()

    async def primary() -> str:
        await go.wait()
        return "primary"

    async def hedge() -> str:
        raise AssertionError("never hedged")

    race = asyncio.ensure_future(
        race_with_hedge(primary, hedge, 0.0, never, instant, disposed.append))
    for _ in range(5):  # the race declines the hedge and waits for the primary alone
        await asyncio.sleep(0)
    go.set()
    await asyncio.sleep(0)  # the primary finishes; the race has not resumed yet
    race.cancel()
    with pytest.raises(asyncio.CancelledError):
        await race
    assert disposed == ["primary"]


async def test_an_attempt_cancelled_on_its_own_is_a_failed_attempt() -> None:
    """A hedge that raises `CancelledError` itself (nobody cancelled it) fails like any
    attempt: the race goes on with the primary instead of aborting the request."""
    started = asyncio.Event()

    async def primary() -> str:
        started.set()
        for _ in range(5):
            await asyncio.sleep(0)
        return "primary"

    async def hedge() -> str:
        await started.wait()
        raise asyncio.CancelledError()

    assert await race_with_hedge(primary, hedge, 0.0, admit, instant) == (0, "primary")
