"""docs/configuration.md documents every key of the schema."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from turnout.config.schema import GatewayConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _models(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in _models(arg)]


def all_keys(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        for sub in _models(field.annotation):
            keys |= all_keys(sub, seen)
    return keys


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    keys = all_keys(GatewayConfig)
    assert {"api_key", "max_ejected_share", "stream_continuation", "referer"} <= keys
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert missing == []


def test_provider_union_members_are_walked() -> None:
    keys = all_keys(GatewayConfig)
    assert {"model_path", "title", "parallel", "env", "file"} <= keys
