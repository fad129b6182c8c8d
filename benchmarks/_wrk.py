"""Closed-loop maximum throughput with `wrk` (C, event-driven: far cheaper per request
than any Python client, so it does not become the bottleneck first)."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass

import orjson
from _procs import HERE, pinned


@dataclass(frozen=True)
class WrkResult:
    """wrk's summary of one run."""

    requests: int
    duration_s: float
    errors: int
    """Connect, read, write and timeout errors plus non-2xx/3xx answers."""
    p50_s: float
    p99_s: float

    @property
    def throughput(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


async def run_wrk(url: str, body: bytes, headers: dict[str, str], *, connections: int,
                  duration_s: float, core: int | None, threads: int = 1) -> WrkResult:
    """`wrk -t<threads> -c<connections> -d<duration>` POSTing `body` to `url`."""
    env = {**os.environ, "WRK_BODY": body.decode(),
           "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items())}
    argv = pinned(core, ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s",
                         "--timeout", "30s", "-s", str(HERE / "post.lua"), url])
    proc = await asyncio.create_subprocess_exec(*argv, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    for line in out.decode().splitlines():
        if line.startswith("WRK_JSON "):
            data = orjson.loads(line[len("WRK_JSON "):])
            errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors",
                                           "status_errors", "timeouts"))
            return WrkResult(data["requests"], data["duration_us"] / 1e6, errors,
                             data["p50_us"] / 1e6, data["p99_us"] / 1e6)
    raise RuntimeError(f"wrk failed: {out.decode()}{err.decode()}")
