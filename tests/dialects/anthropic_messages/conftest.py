"""Shared fixtures: the real `anthropic` SDK wired to an in-memory transport (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest

Handler = Callable[[httpx2.Request], httpx2.Response]


def _client(handler: Handler) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="test-key", base_url="http://gateway.test", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


@pytest.fixture
def sdk_client() -> Callable[[Handler], anthropic.Anthropic]:
    """A factory: the official SDK client whose HTTP calls go to `handler`."""
    return _client


@pytest.fixture
def capture_sdk_body() -> Callable[..., dict[str, Any]]:
    """Call `client.messages.create(**kwargs)` and return the JSON body the SDK sent."""

    def capture(**kwargs: Any) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def handler(request: httpx2.Request) -> httpx2.Response:
            seen.append(json.loads(request.content))
            return httpx2.Response(200, json={
                "id": "msg_x", "type": "message", "role": "assistant", "model": "m",
                "content": [], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}})

        _client(handler).messages.create(**kwargs)
        return seen[0]

    return capture
