"""A cheap prompt-size estimate for the pre-call context-window check."""

from __future__ import annotations

from turnout.core.parts import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from turnout.core.request import ChatRequest

_IMAGE_TOKENS = 800  # a typical high-detail image tile budget; errs on the generous side


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """About 4 characters per token (a lower bound would let a request through that then
    fails upstream; an over-estimate only skips targets that are nearly full)."""
    chars = 0
    images = 0
    for message in request.messages:
        chars += 8
        for part in message.parts:
            if isinstance(part, TextPart | ThinkingPart):
                chars += len(part.text)
            elif isinstance(part, ToolCallPart):
                chars += len(part.name) + len(part.arguments)
            elif isinstance(part, ToolResultPart):
                chars += sum(len(p.text) for p in part.content if isinstance(p, TextPart))
                images += sum(1 for p in part.content if isinstance(p, ImagePart))
            elif isinstance(part, ImagePart):
                images += 1
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "") + len(str(tool.parameters))
    return chars // 4 + images * _IMAGE_TOKENS
