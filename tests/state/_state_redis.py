"""Real Redis for the state tests: reachability (skip, or fail under
TURNOUT_REQUIRE_SERVICES=1), one key namespace per test, and its cleanup.

Tests share the server with whoever else uses it, so they never flush anything: each test
gets a random prefix and deletes exactly the keys under it.
"""

from __future__ import annotations

import os
import socket
import uuid
from functools import cache

import pytest
from redis.asyncio import Redis

from turnout.state.redis_base import redis_client

REDIS_URL = os.environ.get("TURNOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("TURNOUT_REQUIRE_SERVICES") == "1"


@cache
def redis_problem() -> str | None:
    """Why Redis cannot be used, or None when it answers PING."""
    client = Redis.from_url(REDIS_URL)
    host = client.connection_pool.connection_kwargs.get("host", "127.0.0.1")
    port = client.connection_pool.connection_kwargs.get("port", 6379)
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"Redis at {REDIS_URL} is unreachable ({exc})"
    if not answer.startswith(b"+PONG"):
        return f"Redis at {REDIS_URL} answered PING with {answer!r}"
    return None


def require_redis() -> None:
    """Skip the test when Redis is not there, or fail it when services are required."""
    problem = redis_problem()
    if problem is None:
        return
    if REQUIRED:
        pytest.fail(f"{problem}, and TURNOUT_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{problem}; set TURNOUT_TEST_REDIS_URL or start Redis to run this test")


def new_namespace() -> str:
    return f"turnout-test-{uuid.uuid4().hex[:12]}"


def connect() -> Redis:
    return redis_client(REDIS_URL, timeout_s=2.0)


async def drop_namespace(client: Redis, namespace: str) -> None:
    """Delete every key of one test's namespace (the stores tag keys `{namespace}:`)."""
    keys = [key async for key in client.scan_iter(match=f"{{{namespace}}}:*", count=500)]
    if keys:
        await client.delete(*keys)
