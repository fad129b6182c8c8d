"""Rate limits, concurrency limits and budgets of tenants and keys, through the gateway
with the official SDKs: what is refused, how, and what is charged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from _gw_errors import post, valid_body
from _gw_harness import compile_data, serve
from _gw_tenancy import ADMIN_KEY, Admin, tenancy_data

from turnout.sim.faults import Fault
from turnout.sim.server import RunningSimulator
from turnout.stages.quota import Quota


@pytest.fixture
async def admin(sims: dict[str, RunningSimulator], tmp_path: Path) -> AsyncIterator[Admin]:
    async with AsyncExitStack() as stack:
        runtime = compile_data(tenancy_data(sims, tmp_path / "t.db",
                                            budget_timezone="Europe/Paris"),
                               {"ADMIN_KEY": ADMIN_KEY})
        yield Admin(await serve(runtime, stack))


def sdk(admin: Admin, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{admin.gw.url}/v1", api_key=key, max_retries=0)


async def ask(admin: Admin, key: str, model: str = "oa", **extra: Any) -> Any:
    client = sdk(admin, key)
    try:
        return await client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hello there"}], **extra)
    finally:
        await client.close()


async def test_requests_per_minute_refuse_with_retry_after_and_ratelimit_headers(
        admin: Admin) -> None:
    await admin.tenant("acme")
    key = await admin.key("acme", {"limits": {"rpm": 2}})
    first = await ask(admin, key)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    second = await ask(admin, key)
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as refused:
        await ask(admin, key)
    response = refused.value.response
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "rate_limit_exceeded"
    assert "2 requests per minute" in body["message"]
    # Another tenant's key is not limited by this one's calls.
    await admin.tenant("beta")
    other = await admin.key("beta", {"limits": {"rpm": 2}})
    assert (await ask(admin, other)).headers["x-ratelimit-remaining-requests"] == "1"


async def test_a_tenant_limit_holds_across_its_keys(admin: Admin) -> None:
    await admin.tenant("acme", {"limits": {"rpm": 3}})
    keys = [await admin.key("acme") for _ in range(2)]
    statuses = []
    for i in range(5):
        reply = await post(admin.gw, "openai", valid_body("openai"),
                           {"Authorization": f"Bearer {keys[i % 2]}"})
        statuses.append(reply.status)
    assert statuses == [200, 200, 200, 429, 429]


async def test_tokens_per_minute_count_the_prompt_and_max_tokens(admin: Admin) -> None:
    await admin.tenant("acme")
    key = await admin.key("acme", {"limits": {"tpm": 500}})
    ok = await ask(admin, key, max_tokens=100)
    assert ok.headers["x-ratelimit-limit-tokens"] == "500"
    left = int(ok.headers["x-ratelimit-remaining-tokens"])
    assert 380 <= left < 400  # 100 output plus a short prompt
    # A single request bigger than the whole limit can never pass: no Retry-After.
    with pytest.raises(openai.RateLimitError) as refused:
        await ask(admin, key, max_tokens=5000)
    assert "retry-after" not in refused.value.response.headers
    assert "more than the tokens per minute limit" in str(refused.value.body)


async def test_a_concurrency_limit_counts_calls_in_flight(
        admin: Admin, sims: dict[str, RunningSimulator]) -> None:
    await admin.tenant("acme")
    key = await admin.key("acme", {"limits": {"concurrency": 1}})
    sims["openai_chat"].faults.add(Fault(kind="latency", seconds=0.5))
    slow = asyncio.create_task(ask(admin, key))
    await asyncio.sleep(0.2)
    with pytest.raises(openai.RateLimitError, match="Concurrency limit of 1"):
        await ask(admin, key)
    await slow
    await ask(admin, key)  # the slot was given back


async def test_an_exhausted_budget_is_insufficient_quota_naming_the_budget_and_its_reset(
        admin: Admin) -> None:
    # claude-haiku-4-5: $5 per million output tokens: 1000 max tokens reserve ~$0.005.
    await admin.tenant("acme", {"budgets": [{"period": "day", "usd": 0.008}]})
    key = await admin.key("acme")
    await ask(admin, key, "an", max_tokens=1000)
    with pytest.raises(openai.RateLimitError) as refused:
        await ask(admin, key, "an", max_tokens=2000)  # could cost $0.01
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "insufficient_quota"
    assert body["type"] == "insufficient_quota"
    message = body["message"]
    assert "daily budget of $0.008 for tenant 'acme'" in message
    # It resets at the next midnight in the configured zone.
    tomorrow = datetime.now(UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")).date() + timedelta(days=1)
    assert f"It resets at {tomorrow.isoformat()}T00:00:00+01:00" in message
    assert int(refused.value.response.headers["retry-after"]) > 0
    # A smaller request still fits what is left.
    await ask(admin, key, "an", max_tokens=1000)


async def test_an_anthropic_client_gets_its_own_error_shape_for_a_budget(
        admin: Admin) -> None:
    await admin.tenant("acme", {"budgets": [{"period": "total", "tokens": 10}]})
    key = await admin.key("acme")
    client = anthropic.AsyncAnthropic(base_url=admin.gw.url, api_key=key, max_retries=0)
    try:
        with pytest.raises(anthropic.RateLimitError) as refused:
            await client.messages.create(model="an", max_tokens=64,
                                         messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "rate_limit_error"
    assert "lifetime budget of 10 tokens" in body["error"]["message"]
    assert "does not reset" in body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_the_budget_is_charged_what_the_call_cost(
        admin: Admin, sims: dict[str, RunningSimulator], stream: bool) -> None:
    await admin.tenant("acme", {"budgets": [{"period": "month", "tokens": 1_000_000}]})
    key = await admin.key("acme", {"budgets": [{"period": "day", "usd": 5}]})
    body = valid_body("openai", stream=stream)
    body["max_tokens"] = 500
    if stream:
        body["stream_options"] = {"include_usage": True}
    async with admin.gw.http.post(f"{admin.gw.url}/v1/chat/completions", json=body,
                                  headers={"Authorization": f"Bearer {key}"}) as reply:
        assert reply.status == 200
        await reply.read()
    stores = quota_stores(admin)
    await stores.aclose()  # alert checks finished
    # The simulator counts words as tokens; its usage is what the budget was charged.
    recorded = sims["openai_chat"].requests[-1]
    assert recorded.body["max_tokens"] == 500
    month = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    tokens = (await stores._local_budgets.usage(
        f"budget:tenant:acme:month:tokens:{month:%Y-%m}"))
    assert tokens.reserved == 0
    # The real usage (the simulator counts words), not the 500-token reservation.
    assert tokens.spent == recorded_usage(sims["openai_chat"].requests[-1].body)


def recorded_usage(body: dict[str, Any]) -> int:
    """The tokens the simulator reports for the default test prompt: its words in, its
    answer's words out."""
    from turnout.dialects.openai_chat.request_in import decode_request
    from turnout.sim.responder import count_input_tokens, respond

    request = decode_request(body)
    answer = respond(request, sim_name="openai-sim")
    return count_input_tokens(request) + answer.usage.output_tokens


def quota_stores(admin: Admin) -> Any:
    stage = next(s for s in admin.gw.engine.pipeline.stages if isinstance(s, Quota))
    return stage._stores


async def test_fifty_concurrent_calls_on_room_for_one_admit_exactly_one(admin: Admin) -> None:
    await admin.tenant("acme", {"budgets": [{"period": "day", "tokens": 700}]})
    key = await admin.key("acme")
    body = valid_body("openai")
    body["max_tokens"] = 600  # one call's worst case fits, two do not
    headers = {"Authorization": f"Bearer {key}"}
    replies = await asyncio.gather(*(post(admin.gw, "openai", body, headers)
                                     for _ in range(50)))
    statuses = sorted(r.status for r in replies)
    assert statuses.count(200) == 1 and statuses.count(429) == 49
    for reply in replies:
        if reply.status == 429:
            assert reply.body["error"]["code"] == "insufficient_quota"
            assert reply.body["error"]["type"] == "insufficient_quota"


async def test_keys_without_a_policy_pay_nothing_for_the_stage(admin: Admin) -> None:
    await admin.tenant("acme")
    key = await admin.key("acme")
    reply = await ask(admin, key)
    assert "x-ratelimit-limit-requests" not in reply.headers
    assert quota_stores(admin)._sweeper is None  # nothing was ever reserved


async def test_a_client_leaving_mid_stream_settles_its_reservation_at_an_estimate(
        admin: Admin, sims: dict[str, RunningSimulator]) -> None:
    await admin.tenant("acme", {"budgets": [{"period": "total", "tokens": 1_000_000}]})
    key = await admin.key("acme")
    sims["openai_chat"].faults.add(Fault(kind="slow_chunks", seconds=0.3))
    body = valid_body("openai", stream=True)
    body["max_tokens"] = 900
    async with admin.gw.http.post(f"{admin.gw.url}/v1/chat/completions", json=body,
                                  headers={"Authorization": f"Bearer {key}"}) as reply:
        assert reply.status == 200
        assert b"Hello" in await reply.content.readany()
    # The client is gone before the usage event: the call ends as the gateway notices.
    stores = quota_stores(admin)
    budget = "budget:tenant:acme:total:tokens:all"
    for _ in range(200):
        usage = await stores._local_budgets.usage(budget)
        if usage.reserved == 0:
            break
        await asyncio.sleep(0.02)
    assert usage.reserved == 0
    # Charged the prompt and the output seen, counted offline: not zero, not the 900
    # tokens reserved.
    assert 5 < usage.spent < 100
