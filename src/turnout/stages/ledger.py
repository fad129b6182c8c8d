"""The spend ledger stage: one record per upstream attempt, durable before it is sent.

`on_attempt` journals the attempt's worst case (its prompt counted offline plus its
maximum output, at the deployment's price) as an `interrupted` record: if the gateway dies
before the call ends, that is what the replay charges, so spend is never under-counted.
`on_end` journals each attempt's final record and queues it for the database: the
answering attempt with the call's metered usage and cost (`turnout.stages.metering`, the
same figures the budget is settled at), the others with their outcome and status and no
tokens. Nothing here touches the database or serializes the prompt: the request path pays
two small journal writes per attempt (see `turnout.spend.writer` for the rest).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from turnout.core.errors import Attempt, ClientClosed
from turnout.engine.pipeline import Call, CallEnd, Stage
from turnout.engine.plan import Candidate
from turnout.pricing.estimate import reservation_micro_usd
from turnout.spend.records import SpendRecord, conversation_id
from turnout.spend.writer import LedgerWriter
from turnout.stages.metering import metered, prompt_bound
from turnout.stages.quota import DEFAULT_MAX_OUTPUT
from turnout.tokens.count import counter_for

CANCELLED_STATUS = 499
"""The status recorded for an attempt cut before it answered (nginx's client-closed)."""


class AttemptIds:
    """Call ids unique across processes and restarts without a system call per call: a
    random per-instance prefix and a counter. An attempt's id is its call's id and index."""

    __slots__ = ("_next", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(9).hex()
        self._next = itertools.count(1).__next__

    def __call__(self) -> str:
        return f"{self._prefix}{self._next():x}"


@dataclass(slots=True)
class _Started:
    record: SpendRecord
    """The worst case, as journaled; the final record is built from it."""
    segment: int
    monotonic: float


@dataclass(slots=True)
class _Attempts:
    """The ledger's state of one call."""

    call_id: str
    conversation_id: str | None
    started: list[_Started] = field(default_factory=list)


class Ledger(Stage):
    """Records every upstream attempt of every call in the spend ledger."""

    name = "ledger"

    def __init__(self, writer: LedgerWriter, *, wall: Callable[[], datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._writer = writer
        self._ids = AttemptIds()
        self._wall = wall or (lambda: datetime.now(UTC))
        self._monotonic = monotonic

    async def on_attempt(self, call: Call, candidate: Candidate) -> Candidate:
        taken = call.state.get(self)
        if taken is None:
            ctx = call.ctx
            taken = call.state[self] = _Attempts(self._ids(), conversation_id(
                ctx.conversation_id or call.request.metadata.get("conversation_id")))
        record = self._worst_case(call, candidate, taken)
        taken.started.append(_Started(record, self._writer.started(record),
                                      self._monotonic()))
        return candidate

    def _worst_case(self, call: Call, candidate: Candidate, taken: _Attempts) -> SpendRecord:
        """The attempt charged at the most it can cost (`interrupted`, estimated)."""
        request, deployment, identity = call.request, candidate.deployment, call.ctx.identity
        counter = counter_for(deployment.dialect, deployment.target.model)
        prompt = prompt_bound(call, counter)
        cap, wanted = deployment.info.max_output_tokens, request.max_tokens
        output = (min(wanted, cap) if wanted is not None and cap is not None
                  else wanted or cap or DEFAULT_MAX_OUTPUT)
        price = deployment.info.price
        return SpendRecord(
            attempt_id=f"{taken.call_id}.{len(taken.started)}",
            request_id=call.ctx.request_id,
            tenant_id=identity.tenant_id if identity is not None else None,
            key_id=identity.key_id if identity is not None else None,
            alias=request.model, provider=deployment.provider, deployment=deployment.id,
            model=deployment.target.model, started_at=self._wall(), latency_ms=0,
            outcome="interrupted", status=0, stream=request.stream,
            input_tokens=prompt, output_tokens=output,
            cost_micro_usd=0 if price is None else reservation_micro_usd(prompt, output, price),
            estimated=True, conversation_id=taken.conversation_id)

    async def on_end(self, call: Call, end: CallEnd) -> None:
        taken = call.state.pop(self, None)
        if not isinstance(taken, _Attempts):
            return
        logged: dict[str, list[Attempt]] = {}
        for entry in call.ctx.attempts:
            logged.setdefault(entry.target, []).append(entry)
        matched = [_pop(logged, s.record.deployment) for s in taken.started]
        answered = _answering(taken.started, matched, end)
        now = self._monotonic()
        writer = self._writer
        for index, (started, attempt) in enumerate(zip(taken.started, matched, strict=True)):
            if index == answered:
                record = _answer(call, end, started, now)
            else:
                record = _other(started.record, attempt)
            writer.ended(record, started.segment)


def _pop(logged: dict[str, list[Attempt]], target: str) -> Attempt | None:
    """The earliest logged attempt on `target` not matched yet (attempts on one target
    run one after the other; hedges go to another target)."""
    attempts = logged.get(target)
    return attempts.pop(0) if attempts else None


def _answering(started: list[_Started], matched: list[Attempt | None], end: CallEnd) -> int:
    """The index of the attempt whose answer the call used (-1: none)."""
    if end.deployment is None:
        return -1
    served = end.deployment.id
    for index in range(len(started) - 1, -1, -1):
        attempt = matched[index]
        if attempt is not None and attempt.outcome == "ok" and attempt.target == served:
            return index
    return -1


def _answer(call: Call, end: CallEnd, started: _Started, now: float) -> SpendRecord:
    spend = metered(call, end)
    usage = spend.usage
    error = end.error
    if error is None:
        outcome, status = "ok", 200
    elif isinstance(error, ClientClosed):
        outcome, status = "cancelled", CANCELLED_STATUS
    else:
        outcome, status = "error", error.status
    return _ended(started.record, max(0, round((now - started.monotonic) * 1000)), outcome,
                  status, usage.input_tokens, usage.output_tokens, usage.cached_tokens,
                  usage.cache_write_tokens, usage.reasoning_tokens, spend.micro_usd,
                  spend.estimated)


def _other(record: SpendRecord, attempt: Attempt | None) -> SpendRecord:
    """An attempt whose answer was not used: its outcome and status, no tokens."""
    if attempt is None:  # refused before it was sent (e.g. a feature the target lacks)
        outcome, status, latency = "not_sent", 0, 0.0
    elif attempt.outcome == "ok":  # a hedge that lost the race, a continued stream
        outcome, status, latency = "superseded", 200, attempt.latency_s
    elif attempt.outcome == "cancelled":
        outcome, status, latency = "cancelled", CANCELLED_STATUS, attempt.latency_s
    else:
        error = attempt.error
        outcome, latency = "error", attempt.latency_s
        status = error.status if error is not None else 500
    return _ended(record, max(0, round(latency * 1000)), outcome, status,
                  0, 0, 0, 0, 0, 0, False)


def _ended(r: SpendRecord, latency_ms: int, outcome: str, status: int, input_tokens: int,
           output_tokens: int, cached: int, cache_write: int, reasoning: int, micro_usd: int,
           estimated: bool) -> SpendRecord:
    """The journaled record with how the attempt ended (positionally, in column order:
    `dataclasses.replace` costs twice as much, on the request path)."""
    return SpendRecord(r.attempt_id, r.request_id, r.tenant_id, r.key_id, r.alias,
                       r.provider, r.deployment, r.model, r.started_at, latency_ms, outcome,
                       status, r.stream, input_tokens, output_tokens, cached, cache_write,
                       reasoning, micro_usd, estimated, r.conversation_id)
