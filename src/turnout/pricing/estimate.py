"""Usage to bill when the provider's own figures are missing or incomplete.

A stream cut before its final usage event, a client gone mid-stream, or an upstream that
reports nothing (some local servers) still consumed tokens. The estimate counts the prompt
from the request and the output from what was seen, with the offline counter of the
deployment's model; reported figures are kept wherever they are larger, since usage
reported so far is a lower bound of the final one.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout.core.request import ChatRequest
from turnout.core.response import ChatResponse, Usage
from turnout.pricing.cost import Cost, cost
from turnout.pricing.table import Price
from turnout.tokens.count import TokenCounter


@dataclass(frozen=True, slots=True)
class SettledUsage:
    """The usage to bill for one attempt, and whether any of it was estimated."""

    usage: Usage
    estimated: bool


def estimate_usage(request: ChatRequest, response: ChatResponse,
                   counter: TokenCounter) -> Usage:
    """Usage counted offline: the request's prompt and the parts of `response` seen so
    far. Cache figures are unknowable offline and stay zero (billed at the full input
    rate, which over- rather than under-charges)."""
    thinking = counter.reasoning(response.parts).tokens
    return Usage(input_tokens=counter.prompt(request).tokens,
                 output_tokens=counter.output(response.parts).tokens,
                 reasoning_tokens=thinking)


def settle_usage(request: ChatRequest, response: ChatResponse, counter: TokenCounter, *,
                 complete: bool) -> SettledUsage:
    """The usage to bill. `complete` says the attempt ended normally (its final usage, if
    the provider sends any, has arrived). Reported usage is used as it is when the attempt
    is complete and reports a prompt (and some output, if any was seen); otherwise each
    count is the larger of reported and estimated, flagged as estimated."""
    reported = response.usage
    if complete and reported.input_tokens > 0 and (
            reported.output_tokens > 0 or counter.output(response.parts).tokens == 0):
        return SettledUsage(_copy(reported), estimated=False)
    guess = estimate_usage(request, response, counter)
    output = max(reported.output_tokens, guess.output_tokens)
    cache = reported.cached_tokens + reported.cache_write_tokens  # a subset of input
    return SettledUsage(Usage(
        input_tokens=max(reported.input_tokens, guess.input_tokens, cache),
        output_tokens=output,
        cached_tokens=reported.cached_tokens,
        cache_write_tokens=reported.cache_write_tokens,
        reasoning_tokens=min(output, max(reported.reasoning_tokens, guess.reasoning_tokens)),
    ), estimated=True)


def attempt_cost(request: ChatRequest, response: ChatResponse, counter: TokenCounter,
                 price: Price, *, complete: bool) -> Cost:
    """The cost of one attempt, estimated where its usage is missing or partial."""
    settled = settle_usage(request, response, counter, complete=complete)
    return cost(settled.usage, price, estimated=settled.estimated)


def _copy(usage: Usage) -> Usage:
    return Usage(usage.input_tokens, usage.output_tokens, usage.cached_tokens,
                 usage.cache_write_tokens, usage.reasoning_tokens)


def reservation_cost(request: ChatRequest, counter: TokenCounter, price: Price, *,
                     max_output_tokens: int, prompt_tokens: int | None = None) -> Cost:
    """The most a call can cost before it is made, for a budget reservation: the offline
    prompt count billed at the dearest prompt rate (an Anthropic cache write costs more
    than plain input) and `max_output_tokens` at the dearest output rate. Flagged
    estimated; settle the reservation at `attempt_cost` once the call has ended.
    `prompt_tokens`: the prompt already counted with `counter` (not counted again)."""
    prompt = counter.prompt(request).tokens if prompt_tokens is None else prompt_tokens
    rates = price.rates(prompt)
    output = max(0, max_output_tokens)
    if rates.cache_write > rates.input:
        usage = Usage(input_tokens=prompt, cache_write_tokens=prompt)
    else:
        usage = Usage(input_tokens=prompt)
    if rates.reasoning > rates.output:
        usage.output_tokens = usage.reasoning_tokens = output
    else:
        usage.output_tokens = output
    return cost(usage, price, estimated=True)


def reservation_micro_usd(prompt_tokens: int, max_output_tokens: int, price: Price) -> int:
    """`reservation_cost(...).micro_usd()` without building a `Cost`: the same dearest
    rates (a rate per million tokens is micro-dollars per token), rounded up. For the hot
    path of the budget stage."""
    rates = price.rates(prompt_tokens)
    n_input, _, n_write, n_output, n_reasoning = rates.numerators
    units = (prompt_tokens * max(n_input, n_write)
             + max(0, max_output_tokens) * max(n_output, n_reasoning))
    return -(-units // rates.denominator)  # exact integers (`Rates.numerators`), rounded up
