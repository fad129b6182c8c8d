"""What a call cost: the usage to bill and its price, computed once per call for every
stage that needs it (the budget's settle, the spend ledger).

Reported usage is used as the provider gave it; where it is missing or partial (a stream
cut before its final usage event, a client gone mid-stream, an upstream that reports
nothing) the usage is estimated offline from the request and the output seen, and flagged
as estimated (see `turnout.pricing.estimate`). To see a stream's output, the `Meter` stage
keeps references to its text deltas (no copy) as they pass; it is in the pipeline only when
a stage that needs the cost is.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout.core.events import TextDelta, ThinkingDelta, ToolArgsDelta
from turnout.core.parts import Part, TextPart, ThinkingPart
from turnout.core.response import ChatResponse, Usage
from turnout.engine.pipeline import Batch, Call, CallEnd, Stage
from turnout.pricing.cost import Cost, cost, micro_usd
from turnout.pricing.estimate import settle_usage
from turnout.pricing.table import Price
from turnout.providers.types import Deployment
from turnout.tokens.count import TokenCounter, counter_for


@dataclass(frozen=True, slots=True)
class Metered:
    """The billable usage and cost of one call."""

    deployment: Deployment | None
    usage: Usage
    price: Price | None
    """None when the deployment has no price (counted as zero dollars)."""
    estimated: bool
    micro_usd: int
    """The cost in micro-dollars, rounded up (`cost.micro_usd()`, in integer arithmetic)."""

    @property
    def cost(self) -> Cost | None:
        """The exact cost by billed kind (computed on each use: the budget stage needs only
        `micro_usd`); None when the deployment has no price."""
        return None if self.price is None else cost(self.usage, self.price,
                                                    estimated=self.estimated)

    @property
    def tokens(self) -> int:
        return self.usage.input_tokens + self.usage.output_tokens


_NOTHING = Metered(None, Usage(), None, False, 0)


@dataclass(slots=True)
class _Seen:
    """A stream's output as it passed, by kind."""

    text: list[str]
    thinking: list[str]


class Meter(Stage):
    """Keeps what a stream's output said, for estimating its usage if it is cut."""

    name = "meter"

    async def on_batch(self, call: Call, batch: Batch) -> Batch:
        seen = call.state.get(Meter)
        if seen is None:
            seen = call.state[Meter] = _Seen([], [])
        for event in batch:
            if isinstance(event, TextDelta):
                seen.text.append(event.text)
            elif isinstance(event, ToolArgsDelta):
                seen.text.append(event.arguments)
            elif isinstance(event, ThinkingDelta):
                seen.thinking.append(event.text)
        return batch


def prompt_tokens(call: Call, counter: TokenCounter) -> int:
    """The request's prompt counted offline with `counter`, once per call (the budget's
    reservation and the ledger's worst case count the same prompt)."""
    counted = call.state.get(prompt_tokens)
    if not isinstance(counted, dict):
        counted = call.state[prompt_tokens] = {}
    tokens = counted.get(counter)
    if tokens is None:
        tokens = counted[counter] = counter.prompt(call.request).tokens
    return int(tokens)


def prompt_bound(call: Call, counter: TokenCounter) -> int:
    """At least the request's prompt tokens: the exact count when a stage already made it
    (`prompt_tokens`), else a bound that needs no tokenizer (`TokenCounter.prompt_bound`),
    for worst cases that are only used if something goes wrong (a crash mid-attempt)."""
    counted = call.state.get(prompt_tokens)
    if isinstance(counted, dict):
        tokens = counted.get(counter)
        if tokens is not None:
            return int(tokens)
    return counter.prompt_bound(call.request)


def metered(call: Call, end: CallEnd) -> Metered:
    """The call's billable usage and cost, computed on first use and kept in `call.state`."""
    known = call.state.get(metered)
    if isinstance(known, Metered):
        return known
    result = _meter(call, end)
    call.state[metered] = result
    return result


def _meter(call: Call, end: CallEnd) -> Metered:
    deployment = end.deployment
    if deployment is None:
        return _NOTHING
    response = end.response
    if response is None:  # a stream: rebuild what it said from the deltas seen
        seen = call.state.get(Meter)
        parts: list[Part] = []
        if isinstance(seen, _Seen):
            if seen.thinking:
                parts.append(ThinkingPart("".join(seen.thinking)))
            if seen.text:
                parts.append(TextPart("".join(seen.text)))
        response = ChatResponse(id="", model="", parts=parts, usage=end.usage)
    counter = counter_for(deployment.dialect, deployment.target.model)
    settled = settle_usage(call.request, response, counter, complete=end.error is None)
    price = deployment.info.price
    micros = 0 if price is None else micro_usd(settled.usage, price)
    return Metered(deployment, settled.usage, price, settled.estimated, micros)
