"""What one request needs from a target, and which targets of its plan can give it.

Checked before any call, against facts compiled into each deployment's `ModelInfo` (the
bundled catalog, then the config's `models:` overrides):

- **capabilities**: tools (defined, and `tool_choice` not `none`), image input, a
  `json_schema` response format, enabled thinking. A target is skipped only for a
  capability declared `False`; an unknown one (a model the catalog does not list) is tried.
- **room**: the prompt's estimated size must fit a declared context window. An upstream
  that answers "context length exceeded" tells the same thing late: that deployment then
  counts as too small for this request, whatever it declares, and the plan goes on to the
  targets that might hold it (declared window at least the estimate, or unknown).
- **output**: a `max_tokens` above a target's declared output limit is lowered to that
  limit for the attempts on that target only.

When every target was skipped for these reasons the request itself is at fault, and the
caller gets `UnsupportedFeature` or `ContextWindowExceeded` (400) instead of an
availability error.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Sequence

from turnout.core.errors import (
    Attempt,
    ContextWindowExceeded,
    TurnoutError,
    UnsupportedFeature,
)
from turnout.core.parts import ImagePart, ToolResultPart
from turnout.core.request import ChatRequest
from turnout.engine.plan import Candidate
from turnout.engine.tokens import estimate_prompt_tokens
from turnout.providers.types import (
    CAPABILITIES,
    JSON_SCHEMA,
    REASONING,
    TOOLS,
    VISION,
    Deployment,
)

_WORDS: dict[int, tuple[str, str]] = {
    TOOLS: ("tools", "tools"),
    VISION: ("image input", "messages"),
    JSON_SCHEMA: ("a json_schema response format", "response_format"),
    REASONING: ("thinking", "thinking"),
}
"""Capability bit -> (what the caller is told it asked for, the request field to blame)."""


def request_needs(request: ChatRequest, relevant: int) -> int:
    """The capability bits among `relevant` that `request` uses. Only bits some target
    lacks are worth looking for; the image check is a pass over every part."""
    needs = 0
    if relevant & TOOLS and request.tools and (
            request.tool_choice is None or request.tool_choice.mode != "none"):
        needs |= TOOLS
    fmt = request.response_format
    if relevant & JSON_SCHEMA and fmt is not None and fmt.type == "json_schema":
        needs |= JSON_SCHEMA
    if relevant & REASONING and request.thinking is not None and request.thinking.enabled:
        needs |= REASONING
    if relevant & VISION and _has_image(request):
        needs |= VISION
    return needs


def _has_image(request: ChatRequest) -> bool:
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ImagePart):
                return True
            if isinstance(part, ToolResultPart) and any(
                    isinstance(p, ImagePart) for p in part.content):
                return True
    return False


class Requirements:
    """One request's needs against its plan, for one run of the executor."""

    __slots__ = ("_active", "_skipped", "_too_small", "needs", "tokens")

    def __init__(self, request: ChatRequest, plan: Sequence[Candidate]) -> None:
        lacking = 0
        windows = False
        for candidate in plan:
            info = candidate.deployment.info
            lacking |= info.lacks
            windows = windows or info.context_window is not None
        self.needs = request_needs(request, lacking) if lacking else 0
        """Capability bits the request uses that some target of the plan lacks."""
        # Estimating costs a pass over the prompt: only when some target declares a window.
        self.tokens = estimate_prompt_tokens(request) if windows else 0
        """The prompt's estimated size in tokens (0: not estimated, no window declared)."""
        self._too_small: set[str] = set()
        self._skipped: list[Deployment] = []
        self._active = bool(self.needs or self.tokens)

    def fits(self, deployment: Deployment) -> bool:
        """Whether `deployment` might serve the request: no needed capability declared
        missing, and no declared or reported window too small for it."""
        if not self._active:
            return True
        info = deployment.info
        if info.lacks & self.needs:
            return False
        window = info.context_window
        if window is not None and window < self.tokens:
            return False
        return deployment.id not in self._too_small

    def skip(self, deployment: Deployment) -> bool:
        """`not fits(deployment)`, remembering the skipped target for `refusal`."""
        if self.fits(deployment):
            return False
        self._skipped.append(deployment)
        return True

    def overflowed(self, deployment: Deployment) -> None:
        """An upstream answered that the request does not fit `deployment`: for the rest of
        this request its window counts as too small, whatever it declares."""
        self._too_small.add(deployment.id)
        self._active = True

    def refusal(self, route: str) -> TurnoutError | None:
        """The caller's error when targets were skipped only for the request's needs (None
        when none was skipped). If some target has every capability the request uses, only
        the size stands in the way: `ContextWindowExceeded`; else `UnsupportedFeature`."""
        skipped = list({d.id: d for d in self._skipped}.values())
        if not skipped:
            return None
        capable = [d for d in skipped if not d.info.lacks & self.needs]
        if capable:
            windows = [d.info.context_window for d in capable
                       if d.info.context_window is not None]
            largest = f" (the largest is {max(windows):,} tokens)" if windows else ""
            return ContextWindowExceeded(
                f"The prompt, about {self.tokens:,} tokens by estimate, does not fit the "
                f"context window of any target of route '{route}'{largest}.",
                param="messages")
        return _unsupported(route, skipped, self.needs)

    def describe_skips(self) -> str:
        """How many targets were skipped for the request's needs, for an error message."""
        count = len({d.id for d in self._skipped})
        if not count:
            return ""
        return f"; {count} more cannot take this request (size or capabilities)"


def _unsupported(route: str, skipped: list[Deployment], needs: int) -> UnsupportedFeature:
    nowhere = needs & functools.reduce(operator.and_, (d.info.lacks for d in skipped))
    if nowhere:
        bits = [bit for bit, _name in CAPABILITIES if nowhere & bit]
        return UnsupportedFeature(
            f"Route '{route}' has no target that supports {_names(nowhere)}, which the "
            f"request uses (targets: {', '.join(d.id for d in skipped)}).",
            param=_WORDS[bits[0]][1])
    missing = "; ".join(f"{d.id} lacks {_names(d.info.lacks & needs)}" for d in skipped)
    return UnsupportedFeature(
        f"No target of route '{route}' supports everything the request uses ({missing}).")


def _names(bits: int) -> str:
    return " and ".join(_WORDS[bit][0] for bit, _name in CAPABILITIES if bits & bit)


def overflow_refusal(attempts: Sequence[Attempt]) -> ContextWindowExceeded | None:
    """When every attempt was refused as too long, the last refusal is the caller's answer
    (the upstream's own message names the real size and window); else None."""
    last: ContextWindowExceeded | None = None
    for attempt in attempts:
        if not isinstance(attempt.error, ContextWindowExceeded):
            return None
        last = attempt.error
    return last


def output_cap(request: ChatRequest, deployment: Deployment) -> int | None:
    """`deployment`'s output limit when the request's `max_tokens` is above it, else None.
    An absent `max_tokens` is left alone: the provider's own default applies (the local
    model stops at its n_ctx)."""
    limit = deployment.info.max_output_tokens
    wanted = request.max_tokens
    if limit is None or wanted is None or wanted <= limit:
        return None
    return limit


def fit_output(request: ChatRequest, deployment: Deployment) -> ChatRequest:
    """`request` as an attempt on `deployment` sends it: a copy with `max_tokens` capped
    when it is above the target's limit. The shared request stays as the client sent it,
    for the other targets of the plan."""
    cap = output_cap(request, deployment)
    return request if cap is None else dataclasses.replace(request, max_tokens=cap)
