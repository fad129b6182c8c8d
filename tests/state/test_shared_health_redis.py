"""Shared health through the real Redis: two engines (two replicas) over the same
simulators and the same key prefix. What one learns (a 429's `Retry-After`, a breaker that
opens or closes) the other honours within milliseconds, without calling the deployment;
a replica started later, or one that lost Redis for a while, catches up; junk on the
channel is ignored. Each test uses its own prefix, so its own keys and channel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from _state_redis import REDIS_URL
from _tcp_proxy import TcpProxy
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from turnout.config import compile_config, load_config
from turnout.core.parts import TextPart
from turnout.core.request import ChatRequest, Message
from turnout.engine.context import CallContext
from turnout.engine.engine import Engine
from turnout.gateway.app import create_gateway
from turnout.resilience.breaker import BreakerState
from turnout.sim import Fault
from turnout.sim.server import RunningSimulator, start_simulator
from turnout.state.health import HealthEvent, LocalHealth, encode_event
from turnout.state.redis_health import RedisSharedHealth

ENV = {"SIM_KEY": "sim-secret"}
A, B = "a/model-a", "b/model-b"
POLICY: dict[str, Any] = {
    "breaker": {"consecutive_failures": 2, "failure_rate_threshold": None,
                "base_ejection_s": 30, "max_ejection_s": 60},
    "retry": {"max_attempts_per_target": 1},  # no waiting out a Retry-After in a test
}
_WAIT_S = 5.0


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    started = {name: await start_simulator("openai_chat", name) for name in ("a", "b")}
    yield started
    for sim in started.values():
        await sim.close()


EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine(sims: dict[str, RunningSimulator], tmp_path: Path, namespace: str,
                      redis: Redis) -> AsyncIterator[EngineFactory]:
    """`await make_engine()`: a started engine with route `r` = [a, then b], sharing
    health through `redis_url` (the test Redis by default) under the test's prefix."""
    engines: list[Engine] = []

    async def factory(redis_url: str | None = REDIS_URL, policy: dict[str, Any] | None = None,
                      prefix: str = namespace, start: bool = True) -> Engine:
        engine = Engine(compile_config(load_config(
            write_config(tmp_path, sims, redis_url, policy or POLICY, prefix,
                         len(engines)), ENV), ENV))
        engines.append(engine)
        if start:
            await engine.start()
            if redis_url is not None:
                await until(lambda: engine.shared_health.connected)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()


def write_config(tmp_path: Path, sims: dict[str, RunningSimulator], redis_url: str | None,
                 policy: dict[str, Any], prefix: str, n: int) -> Path:
    config: dict[str, Any] = {
        "local": False,
        "providers": {name: {"kind": "openai_compatible", "base_url": sim.base_url,
                             "api_key": {"env": "SIM_KEY"}} for name, sim in sims.items()},
        "routes": {"r": {"targets": [{"provider": "a", "model": "model-a"},
                                     {"provider": "b", "model": "model-b", "priority": 1}],
                         "policy": policy}},
    }
    if redis_url is not None:
        config["state"] = {"redis": redis_url, "prefix": prefix}
    path = tmp_path / f"turnout-{n}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def redis_address() -> tuple[str, int]:
    """Where the test Redis listens (what the proxy forwards to)."""
    kwargs = Redis.from_url(REDIS_URL).connection_pool.connection_kwargs
    return kwargs.get("host", "127.0.0.1"), int(kwargs.get("port", 6379))


async def until(condition: Callable[[], object], within: float = _WAIT_S) -> float:
    """Wait for `condition`; the seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - engine state has no event to wait on
            await asyncio.sleep(0.001)
    return time.monotonic() - started


async def served_by(engine: Engine) -> tuple[str, CallContext]:
    ctx = CallContext()
    outcome = await engine.chat(ChatRequest(model="r", messages=[
        Message("user", [TextPart("ping")])]), ctx)
    return outcome.deployment.id, ctx


def shared(engine: Engine) -> RedisSharedHealth:
    assert isinstance(engine.shared_health, RedisSharedHealth)
    return engine.shared_health


def breaker_state(engine: Engine, deployment: str = A) -> BreakerState | None:
    if deployment not in engine.state.breakers:
        return None
    return engine.state.breakers.breaker(deployment).state


def cooling(engine: Engine, deployment: str = A) -> bool:
    until_ = engine.state.cooldown_until.get(deployment)
    return until_ is not None and until_ > engine.state.clock.monotonic()


async def trip(engine: Engine, sims: dict[str, RunningSimulator]) -> None:
    """Two 500s from `a` through `engine`: its breaker opens (each call fails over to b)."""
    sims["a"].faults.add(Fault(kind="status", status=500, times=2))
    for _ in range(2):
        assert (await served_by(engine))[0] == B
    assert breaker_state(engine) is BreakerState.OPEN


# -- one replica's 429 and breaker, honoured by the other --------------------------------

async def test_a_429_seen_by_one_replica_stops_the_other_from_calling(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    first, second = await make_engine(), await make_engine()
    sims["a"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "30"}))
    assert (await served_by(first))[0] == B  # a answered 429: failed over
    await until(lambda: cooling(second))
    remaining = second.state.cooldown_until[A] - second.state.clock.monotonic()
    assert 28.0 < remaining <= 30.0
    sims["a"].requests.clear()
    deployment, ctx = await served_by(second)
    assert deployment == B
    assert sims["a"].requests == []  # the rate-limited deployment was never called
    assert [(a.target, a.outcome) for a in ctx.attempts] == [(B, "ok")]


async def test_a_breaker_opened_on_one_replica_is_open_on_the_other(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    first, second = await make_engine(), await make_engine()
    await trip(first, sims)
    await until(lambda: breaker_state(second) is BreakerState.OPEN)
    ends = [e.state.breakers.breaker(A).open_until for e in (first, second)]
    assert ends[0] is not None and ends[1] is not None
    assert abs(ends[0] - ends[1]) < 0.5  # one process, one clock: the same deadline
    assert second.state.breakers.breaker(A).times_ejected == 1
    sims["a"].requests.clear()
    assert (await served_by(second))[0] == B
    assert sims["a"].requests == []
    assert shared(second).stats.applied >= 1 and shared(first).stats.echoes >= 1


async def test_a_successful_probe_on_one_replica_closes_the_others_breaker(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    policy = {**POLICY, "breaker": {**POLICY["breaker"], "base_ejection_s": 0.3}}
    first, second = await make_engine(policy=policy), await make_engine(policy=policy)
    await trip(first, sims)
    await until(lambda: breaker_state(second) is BreakerState.OPEN)
    await asyncio.sleep(0.35)  # both ejections are over: each breaker is half open
    assert breaker_state(second) is BreakerState.HALF_OPEN
    assert (await served_by(first))[0] == A  # first's probe succeeds
    await until(lambda: breaker_state(second) is BreakerState.CLOSED)


async def test_a_replica_started_later_loads_what_is_running(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator], redis: Redis,
        namespace: str) -> None:
    first = await make_engine()
    await trip(first, sims)
    sims["b"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "20"}))
    sims["a"].faults.add(Fault(kind="status", status=500))  # ejected: never reached
    with pytest.raises(Exception):  # noqa: B017 - the route is out of targets
        await served_by(first)
    await until(lambda: shared(first).stats.published >= 2)
    stored = await redis.hgetall(shared(first).hash_key)
    assert {key.decode() for key in stored} == {f"b:{A}", f"c:{B}"}
    assert 19_000 < await redis.pttl(shared(first).hash_key) <= 31_000

    late = await make_engine()
    assert breaker_state(late) is BreakerState.OPEN
    assert cooling(late, B)
    assert shared(late).stats.resyncs == 1 and shared(late).stats.applied == 2


# -- a replica that loses Redis, keeps serving, and catches up -------------------------

async def test_redis_lost_then_back_local_serving_then_resync(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator],
        caplog: pytest.LogCaptureFixture) -> None:
    proxy = TcpProxy(*redis_address())
    await proxy.up()
    caplog.set_level(logging.INFO, logger="turnout.state")
    try:
        direct, proxied = await make_engine(), await make_engine(redis_url=proxy.url())
        await proxy.down()
        await until(lambda: not proxied.shared_health.connected)
        assert proxied.readiness()["shared:health"].startswith("degraded: Redis unreachable")

        # While away: the direct replica ejects `a`; the other does not hear of it...
        await trip(direct, sims)
        await asyncio.sleep(0.1)
        assert breaker_state(proxied) is not BreakerState.OPEN
        # ...and serves on its own state: `a` answers it a 429, it fails over to b.
        sims["a"].faults.add(Fault(kind="status", status=429,
                                   headers={"Retry-After": "30"}))
        assert (await served_by(proxied))[0] == B
        assert cooling(proxied) and not cooling(direct)

        await proxy.up()
        await until(lambda: proxied.shared_health.connected, within=10.0)
        # It loaded the ejection it missed, and told the other of its cooldown.
        assert breaker_state(proxied) is BreakerState.OPEN
        await until(lambda: cooling(direct))
        assert proxied.readiness()["shared:health"] == "ready"
        assert shared(proxied).stats.resyncs == 2
        assert shared(proxied).stats.disconnects == 1
        sims["a"].requests.clear()
        assert (await served_by(proxied))[0] == B
        assert sims["a"].requests == []
    finally:
        await proxy.down()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis unreachable" in warnings[0].getMessage()
    assert any("Redis is back" in r.getMessage() for r in caplog.records)


async def test_a_killed_subscription_is_resubscribed_and_resynchronised(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator], redis: Redis) -> None:
    first, second = await make_engine(), await make_engine()
    pubsub = shared(second)._pubsub
    assert pubsub is not None and pubsub.connection is not None
    host, port = pubsub.connection._writer.get_extra_info("sockname")[:2]
    assert await redis.client_kill_filter(addr=f"{host}:{port}") == 1
    await trip(first, sims)
    await until(lambda: breaker_state(second) is BreakerState.OPEN)
    assert shared(second).stats.resyncs == 2  # it noticed, and loaded the stored state


async def test_an_engine_that_cannot_reach_redis_at_all_serves_and_says_so(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    proxy = TcpProxy(*redis_address())
    await proxy.up()
    url = proxy.url()
    await proxy.down()  # its port is now closed
    engine = await make_engine(redis_url=url, start=False)
    app = create_gateway(engine.runtime, engine=engine)
    async with TestClient(TestServer(app)) as client:  # starts the engine
        await until(lambda: engine.readiness()["shared:health"].startswith("degraded"))
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 200 and body["status"] == "degraded"  # still serving: 200
        assert body["components"]["shared:health"].startswith("degraded: Redis unreachable")
        await trip(engine, sims)  # routing and breakers work on the local state
        assert (await served_by(engine))[0] == B


# -- junk on the channel, and deployments this replica does not have -------------------

async def test_junk_echoes_and_unknown_ids_are_ignored_and_counted(
        make_engine: EngineFactory, redis: Redis) -> None:
    engine = await make_engine()
    health = shared(engine)
    channel = health.channel
    for junk in (b"garbage", b'{"v": 9}', b'{"v": 1, "r": "x", "d": "a", "k": "open", "s": -1}'):
        await redis.publish(channel, junk)
    await redis.publish(channel, encode_event(HealthEvent("open", "nope/x", 10.0, 1, "peer")))
    await redis.publish(channel, encode_event(HealthEvent("open", A, 10.0, 1, health.replica)))
    await redis.publish(channel, encode_event(HealthEvent("cooldown", A, 10.0, 0, "peer")))
    await until(lambda: cooling(engine))
    assert (health.stats.malformed, health.stats.unknown, health.stats.echoes) == (3, 1, 1)
    assert breaker_state(engine) is not BreakerState.OPEN  # the echo was not applied
    assert health.connected

    # Stored junk and unknown ids are skipped on resync too.
    await redis.hset(health.hash_key, mapping={
        "b:nope/x": "99999999999999 1", "x:weird": "1 1", f"c:{B}": "soon 0",
        f"b:{B}": "\u00b2\u00b2 1", b"c:\xff": b"\xff 0", "c:": "99999999999999 0"})
    health.resync()
    await until(lambda: health.stats.resyncs == 2)
    assert health.stats.unknown == 2 and health.stats.malformed == 8
    assert health.connected and breaker_state(engine, B) is None


# -- the engine's wiring -----------------------------------------------------------------

async def test_without_a_redis_url_nothing_is_shared(make_engine: EngineFactory) -> None:
    engine = await make_engine(redis_url=None)
    assert isinstance(engine.shared_health, LocalHealth)
    assert engine.state.peers is None
    assert "shared:health" not in engine.readiness()


async def test_an_engine_used_without_start_starts_sharing_on_its_first_call(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator]) -> None:
    first, lazy = await make_engine(), await make_engine(start=False)
    assert lazy.readiness()["shared:health"] == "connecting"
    assert (await served_by(lazy))[0] == A
    await until(lambda: lazy.shared_health.connected)
    await trip(first, sims)
    await until(lambda: breaker_state(lazy) is BreakerState.OPEN)


async def test_a_reload_that_changes_the_store_moves_the_sharing(
        make_engine: EngineFactory, sims: dict[str, RunningSimulator], tmp_path: Path,
        namespace: str, redis: Redis) -> None:
    engine, other = await make_engine(), await make_engine(prefix=namespace + "-other")
    old = shared(engine)
    await trip(engine, sims)
    moved = compile_config(load_config(write_config(
        tmp_path, sims, REDIS_URL, POLICY, namespace + "-other", 99), ENV), ENV)
    await engine.swap(moved)
    assert shared(engine) is not old and not old.connected
    await until(lambda: engine.shared_health.connected)
    assert breaker_state(engine) is BreakerState.OPEN  # local state is kept
    sims["b"].faults.add(Fault(kind="status", status=429, headers={"Retry-After": "9"}))
    sims["a"].requests.clear()
    with pytest.raises(Exception):  # noqa: B017 - a is ejected, b rate limited
        await served_by(engine)
    await until(lambda: cooling(other, B))

    local = compile_config(load_config(write_config(
        tmp_path, sims, None, POLICY, namespace, 100), ENV), ENV)
    await engine.swap(local)
    assert isinstance(engine.shared_health, LocalHealth) and engine.state.peers is None
    assert "shared:health" not in engine.readiness()
    await drop_other(redis, namespace + "-other")


async def drop_other(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{{{prefix}}}:*")]
    if keys:
        await redis.delete(*keys)
