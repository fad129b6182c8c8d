"""A Python HTTP load generator (aiohttp client on uvloop): open loop and closed loop.

Open loop avoids coordinated omission: request i is *due* at `t0 + i / rate` whatever
happened to earlier ones, each request runs in its own task, and its latency is measured
from the moment it was due, not from the moment it was actually sent. If the generator
falls behind (its own CPU is saturated), the lateness shows up in the latencies and in
`send_lag` instead of silently lowering the offered load.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

Validator = Callable[[int, bytes], str | None]
"""(status, body) -> None when the answer is good, else a short error label."""


def ok_json(status: int, body: bytes) -> str | None:
    """A non-stream answer is good when it is a 200 (the body is read in full)."""
    return None if status == 200 else f"http_{status}"


def ok_openai_json(status: int, body: bytes) -> str | None:
    """A 200 whose body is an OpenAI chat completion with at least one choice."""
    if status != 200:
        return f"http_{status}"
    try:
        choices = orjson.loads(body).get("choices")
    except (orjson.JSONDecodeError, AttributeError):
        return "bad_json"
    return None if choices else "no_choices"


def ok_openai_stream(status: int, body: bytes) -> str | None:
    """An OpenAI SSE stream is good when it is a 200 ending in `data: [DONE]` with no
    error event (the gateway reports a failure after the first byte as an error event)."""
    if status != 200:
        return f"http_{status}"
    if b'data: {"error"' in body or b'"error":{' in body:
        return "stream_error_event"
    if not body.rstrip().endswith(b"data: [DONE]"):
        return "stream_truncated"
    return None


def ok_anthropic_stream(status: int, body: bytes) -> str | None:
    """An Anthropic SSE stream is good when it is a 200 ending with `message_stop`."""
    if status != 200:
        return f"http_{status}"
    if b"event: error" in body:
        return "stream_error_event"
    if b"message_stop" not in body[-200:]:
        return "stream_truncated"
    return None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (`q` in 0..100) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Target:
    """What to send: one URL, one body, fixed headers."""

    url: str
    body: bytes
    headers: dict[str, str]
    stream: bool = False
    validate: Validator = ok_json


@dataclass
class RunResult:
    """Outcome of one load run. Latencies are in seconds."""

    sent: int = 0
    elapsed_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    """Due time (open loop) or send time (closed loop) to the last body byte, for every
    request that got an answer, good or not."""
    due: list[float] = field(default_factory=list)
    """`time.perf_counter()` at which each request of `latencies` was due (same order)."""
    first_byte: list[float] = field(default_factory=list)
    """Same start, to the first body chunk (streams only: time to first token)."""
    send_lag: list[float] = field(default_factory=list)
    """Open loop: how late each request left compared with its due time."""
    errors: Counter[str] = field(default_factory=Counter)
    """Client-visible failures by label (HTTP status, stream error, connection error)."""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed_s if self.elapsed_s else 0.0

    def p(self, q: float, first_byte: bool = False) -> float:
        return percentile(self.first_byte if first_byte else self.latencies, q)


def make_session(limit: int = 4096) -> aiohttp.ClientSession:
    """A keep-alive session with a large pool (open loop may need many connections)."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, force_close=False)
    return aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",),
                                 timeout=aiohttp.ClientTimeout(total=None))


async def _one(session: aiohttp.ClientSession, target: Target, start: float,
               result: RunResult, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s), session.post(
                target.url, data=target.body, headers=target.headers) as response:
            if target.stream:
                first = await response.content.readany()
                result.first_byte.append(time.perf_counter() - start)
                body = first + await response.content.read()
            else:
                body = await response.read()
            status = response.status
    except TimeoutError:
        result.errors["conn:client_timeout"] += 1
        return
    except (aiohttp.ClientError, OSError) as exc:
        result.errors[f"conn:{type(exc).__name__}"] += 1
        return
    result.latencies.append(time.perf_counter() - start)
    result.due.append(start)
    problem = target.validate(status, body)
    if problem is not None:
        result.errors[problem] += 1


async def open_loop(session: aiohttp.ClientSession, target: Target, rate: float,
                    duration_s: float, timeout_s: float = 60.0) -> RunResult:
    """Send `rate` requests per second for `duration_s`, on schedule, then wait for every
    answer (up to `timeout_s` each)."""
    result = RunResult()
    total = max(1, int(rate * duration_s))
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.01
    index = 0
    while index < total:
        now = time.perf_counter()
        # Launch everything that is due (a burst if we woke up late): never skip a send.
        while index < total and t0 + index * interval <= now:
            due = t0 + index * interval
            result.send_lag.append(now - due)
            task = asyncio.create_task(_one(session, target, due, result, timeout_s))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if index < total:
            await asyncio.sleep(max(0.0, t0 + index * interval - time.perf_counter()))
    result.sent = total
    result.elapsed_s = time.perf_counter() - t0
    if tasks:
        await asyncio.gather(*tasks)
    return result


async def closed_loop(session: aiohttp.ClientSession, target: Target, connections: int,
                      duration_s: float, timeout_s: float = 60.0) -> RunResult:
    """`connections` workers, each sending its next request as soon as the last answered."""
    result = RunResult()
    stop_at = time.perf_counter() + duration_s

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            result.sent += 1
            await _one(session, target, time.perf_counter(), result, timeout_s)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - started
    return result
