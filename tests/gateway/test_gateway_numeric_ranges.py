"""Numbers out of range are a 400 naming the field, in the client's dialect, stream or not.

Integers beyond 64 bits (which the JSON parser turns into doubles), integers written as
decimals (`5.0`, `1e20`), values outside a field's documented range, and carried JSON (tool
schemas, tool inputs) nested deeper than any upstream body could encode used to pass
decoding and crash while the upstream request was encoded (500). Bodies are written as raw
JSON text so that each number reaches the gateway exactly as a client would write it.
"""

from __future__ import annotations

import orjson
import pytest
from _gw_errors import Client, assert_healthy, error_of, post
from _gw_harness import Gateway

from turnout.sim.server import RunningSimulator

HUGE = "18446744073709551616"  # 2**64
DEEP = '{"type": "object", "properties": {"x": ' * 100 + '{"type": "string"}' + "}}" * 100
"""A JSON Schema nested 200 levels deep (the parser takes it; no encoder could send it on)."""
DEEP_PATH = ".properties.x" * 64
"""Where `DEEP` crosses the limit on carried JSON (128 levels)."""

OPENAI_CASES: list[tuple[str, str, str]] = [
    ("max_tokens", HUGE, "max_tokens"),
    ("max_tokens", "1e20", "max_tokens"),
    ("max_tokens", "2147483648", "max_tokens"),
    ("max_tokens", "5.0", "max_tokens"),
    ("max_completion_tokens", HUGE, "max_completion_tokens"),
    ("max_completion_tokens", "1e20", "max_completion_tokens"),
    ("seed", HUGE, "seed"),
    ("seed", "9223372036854775808", "seed"),
    ("seed", "-9223372036854775809", "seed"),
    ("seed", "1e20", "seed"),
    ("seed", "7.5", "seed"),
    ("n", "1e20", "n"),
    ("top_logprobs", HUGE, "top_logprobs"),
    ("top_logprobs", "21", "top_logprobs"),
    ("temperature", "1e308", "temperature"),
    ("top_p", "-0.5", "top_p"),
    ("tools", '[{"type": "function", "function": {"name": "f", "parameters": ' + DEEP + "}}]",
     "tools[0].function.parameters" + DEEP_PATH),
    ("response_format", '{"type": "json_schema", "json_schema": {"name": "a", "schema": '
     + DEEP + "}}", "response_format.json_schema.schema" + DEEP_PATH),
]

ANTHROPIC_CASES: list[tuple[str, str, str]] = [
    ("max_tokens", HUGE, "max_tokens"),
    ("max_tokens", "1e20", "max_tokens"),
    ("max_tokens", "2147483648", "max_tokens"),
    ("max_tokens", "5.0", "max_tokens"),
    ("top_k", HUGE, "top_k"),
    ("top_k", "1e20", "top_k"),
    ("temperature", "1e20", "temperature"),
    ("thinking", '{"type": "enabled", "budget_tokens": ' + HUGE + "}",
     "thinking.budget_tokens"),
    ("thinking", '{"type": "enabled", "budget_tokens": 2048.0}', "thinking.budget_tokens"),
    ("tools", '[{"name": "f", "input_schema": ' + DEEP + "}]", "tools.0.input_schema"
     + DEEP_PATH),
    ("messages", '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": '
     '[{"type": "tool_use", "id": "toolu_1", "name": "f", "input": ' + DEEP + "}]}]",
     "messages.1.content.0.input" + DEEP_PATH),
]


def case_ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{field}={'deep' if value.count('{') > 50 else value}" for field, value, _ in cases]


def raw_body(client: Client, field: str, value: str, stream: bool) -> bytes:
    """A valid request for `client` with `field` set to the raw JSON text `value`."""
    body: dict[str, object] = {"model": "oa", "stream": stream,
                               "messages": [{"role": "user", "content": "hi"}]}
    if client == "anthropic":
        body["max_tokens"] = 32
    body.pop(field, None)
    return orjson.dumps(body)[:-1] + f', "{field}": {value}}}'.encode()


async def check_rejected(gateway: Gateway, sims: dict[str, RunningSimulator],
                         client: Client, body: bytes, param: str) -> str:
    error = error_of(client, await post(gateway, client, body), 400)
    assert error["type"] == "invalid_request_error"
    if client == "openai":
        assert error["param"] == param
    else:
        assert error["message"].startswith(f"{param}: "), error["message"]
    assert all(not sim.requests for sim in sims.values()), "bad input went upstream"
    return str(error["message"])


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
@pytest.mark.parametrize(("field", "value", "param"), OPENAI_CASES,
                         ids=case_ids(OPENAI_CASES))
async def test_openai_numbers_out_of_range_are_named(
        gateway: Gateway, sims: dict[str, RunningSimulator], field: str, value: str,
        param: str, stream: bool) -> None:
    await check_rejected(gateway, sims, "openai", raw_body("openai", field, value, stream),
                         param)
    await assert_healthy(gateway, "openai")


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
@pytest.mark.parametrize(("field", "value", "param"), ANTHROPIC_CASES,
                         ids=case_ids(ANTHROPIC_CASES))
async def test_anthropic_numbers_out_of_range_are_named(
        gateway: Gateway, sims: dict[str, RunningSimulator], field: str, value: str,
        param: str, stream: bool) -> None:
    await check_rejected(gateway, sims, "anthropic",
                         raw_body("anthropic", field, value, stream), param)
    await assert_healthy(gateway, "anthropic")


async def test_openai_messages_say_which_rule_was_broken(
        gateway: Gateway, sims: dict[str, RunningSimulator]) -> None:
    too_big = await check_rejected(
        gateway, sims, "openai", raw_body("openai", "max_tokens", HUGE, False), "max_tokens")
    assert "Expected a value <= 2147483647" in too_big
    decimal = await check_rejected(
        gateway, sims, "openai", raw_body("openai", "seed", "5.0", False), "seed")
    assert "expected an integer, but got a decimal number" in decimal


@pytest.mark.parametrize("client", ["openai", "anthropic"])
async def test_bounds_themselves_are_accepted(gateway: Gateway, client: Client) -> None:
    body = raw_body(client, "max_tokens", "2147483647", False)
    if client == "openai":
        body = body[:-1] + b', "seed": -9223372036854775808}'
    reply = await post(gateway, client, body)
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("route", ["an", "gm"])
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
async def test_tool_arguments_too_deep_for_another_dialect_are_a_400(
        gateway: Gateway, sims: dict[str, RunningSimulator], route: str,
        stream: bool) -> None:
    """OpenAI tool-call arguments are a string, passed on as is to OpenAI upstreams; Anthropic
    and Gemini take an object, parsed from it, which must encode again."""
    arguments = '{"a": ' * 200 + "1" + "}" * 200
    body = {"model": route, "stream": stream, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "f", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"}]}
    error = error_of("openai", await post(gateway, "openai", body), 400)
    assert "nested more than 128 levels deep" in error["message"]
    assert all(not sim.requests for sim in sims.values()), "bad input went upstream"
