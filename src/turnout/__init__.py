"""Turnout: an LLM gateway and agent-routing library.

The library is the product: `turnout.Client` runs the whole engine in-process; the HTTP
gateway (`turnout serve`, `turnout.gateway.app.create_gateway`) is a thin shell over it.
Names are imported lazily so that `import turnout.core...` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Client": "turnout.client",
    "CallContext": "turnout.engine.context",
    "AllAttemptsFailed": "turnout.core.errors",
    "TurnoutError": "turnout.core.errors",
    "StreamAccumulator": "turnout.core.events",
    "ImagePart": "turnout.core.parts",
    "TextPart": "turnout.core.parts",
    "ThinkingPart": "turnout.core.parts",
    "ToolCallPart": "turnout.core.parts",
    "ToolResultPart": "turnout.core.parts",
    "ChatRequest": "turnout.core.request",
    "Message": "turnout.core.request",
    "ToolChoice": "turnout.core.request",
    "ToolDefinition": "turnout.core.request",
    "ChatResponse": "turnout.core.response",
    "Usage": "turnout.core.response",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from turnout.client import Client
    from turnout.core.errors import AllAttemptsFailed, TurnoutError
    from turnout.core.events import StreamAccumulator
    from turnout.core.parts import (
        ImagePart,
        TextPart,
        ThinkingPart,
        ToolCallPart,
        ToolResultPart,
    )
    from turnout.core.request import ChatRequest, Message, ToolChoice, ToolDefinition
    from turnout.core.response import ChatResponse, Usage
    from turnout.engine.context import CallContext


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'turnout' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
