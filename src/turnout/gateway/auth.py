"""The credential a client presents over HTTP; checking it is the pipeline's business."""

from __future__ import annotations

from collections.abc import Mapping


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key of `x-api-key: <key>` (Anthropic SDKs) or `Authorization: Bearer <key>`
    (OpenAI SDKs), or None when there is none."""
    presented = headers.get("x-api-key")
    if presented is None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            presented = auth[7:].strip()
    return presented or None
