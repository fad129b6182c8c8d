"""The health channel's message format: what is published, and what a receiver refuses."""

from __future__ import annotations

import orjson
import pytest

from turnout.state.health import (
    MAX_SECONDS,
    HealthEvent,
    LocalHealth,
    MalformedEvent,
    decode_event,
    encode_event,
)


@pytest.mark.parametrize("event", [
    HealthEvent("open", "openai/gpt-4o", 29.75, 2, "host-1-abc"),
    HealthEvent("closed", "anthropic/claude-sonnet-4-5", replica="r"),
    HealthEvent("cooldown", "a/model-a", 1.5, replica="r"),
    HealthEvent("cooldown", "ünïcode/模型", 0.0, replica=""),
])
def test_round_trip(event: HealthEvent) -> None:
    assert decode_event(encode_event(event)) == event
    assert decode_event(encode_event(event).decode()) == event


def test_the_wire_format_is_small_and_stable() -> None:
    wire = orjson.loads(encode_event(HealthEvent("open", "d", 1.23456, 3, "r")))
    assert wire == {"v": 1, "r": "r", "d": "d", "k": "open", "s": 1.235, "n": 3}


def test_absent_duration_and_count_read_as_zero() -> None:
    event = decode_event(b'{"v": 1, "r": "r", "d": "d", "k": "closed"}')
    assert (event.seconds, event.times_ejected) == (0.0, 0)


def test_a_duration_over_a_day_is_cut_to_a_day() -> None:
    event = decode_event(b'{"v": 1, "r": "r", "d": "d", "k": "open", "s": 1e12, "n": 1}')
    assert event.seconds == MAX_SECONDS


def good(**changes: object) -> bytes:
    fields: dict[str, object] = {"v": 1, "r": "r", "d": "d", "k": "open", "s": 1.0, "n": 1}
    fields.update(changes)
    return orjson.dumps({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[1, 2]", b'"open"', b"null",
    good(v=2), good(v=...), good(v="1"),
    good(r=...), good(r=7), good(d=...), good(d=""), good(d=["x"]), good(d="x" * 600),
    good(k="half_open"), good(k=...), good(k=None),
    good(s="1"), good(s=-0.5), good(s=True), good(s=None),
    good(n=-1), good(n=1.5), good(n=False), good(n="2"),
    b'{"v": 1, "r": "r", "d": "d", "k": "open", "s": NaN}',
])
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode_event(data)


def test_non_finite_durations_are_refused() -> None:
    # not valid JSON to orjson, or out of range: refused either way
    for text in ("Infinity", "-Infinity", "1e999"):
        with pytest.raises(MalformedEvent):
            decode_event(f'{{"v": 1, "r": "r", "d": "d", "k": "open", "s": {text}}}')


async def test_the_local_default_does_nothing_and_is_always_ready() -> None:
    local = LocalHealth()
    await local.start()
    local.breaker_opened("d", 1.0, 1)
    local.breaker_closed("d")
    local.cooled_down("d", 1.0)
    local.resync()
    assert local.connected and local.status == "ready"
    await local.aclose()
