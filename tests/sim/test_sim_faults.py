"""Fault validation and the FIFO queue's `times` and `match` semantics."""

from __future__ import annotations

import pydantic
import pytest

from turnout.core.errors import ContextWindowExceeded, Overloaded, RateLimited, ServerError
from turnout.sim.faults import Fault, FaultQueue


def test_validation_rejects_incomplete_and_unknown() -> None:
    with pytest.raises(pydantic.ValidationError):
        Fault(kind="status")
    with pytest.raises(pydantic.ValidationError):
        Fault(kind="latency")
    with pytest.raises(pydantic.ValidationError):
        Fault.model_validate({"kind": "reset", "colour": "red"})
    with pytest.raises(pydantic.ValidationError):
        Fault(kind="reset", times=0)
    with pytest.raises(pydantic.ValidationError):
        Fault(kind="status", status=400, error="no_such_code")
    with pytest.raises(pydantic.ValidationError):
        Fault.model_validate({"kind": "explode"})
    with pytest.raises(pydantic.ValidationError):
        Fault(kind="raw_stream")  # nothing to send
    with pytest.raises(pydantic.ValidationError):
        Fault(kind="cut_stream", chunks=["data: {}\n\n"])  # chunks of another kind


def test_fifo_and_times() -> None:
    queue = FaultQueue()
    queue.add([Fault(kind="status", status=429, times=2), Fault(kind="reset")])
    kinds = [getattr(queue.take("m", False), "kind", None) for _ in range(4)]
    assert kinds == ["status", "status", "reset", None]
    assert len(queue) == 0


def test_times_minus_one_until_cleared() -> None:
    queue = FaultQueue()
    queue.add(Fault(kind="reset", times=-1))
    assert all(queue.take("m", True) is not None for _ in range(50))
    queue.clear()
    assert queue.take("m", True) is None


def test_match_model_and_stream() -> None:
    queue = FaultQueue()
    queue.add([
        Fault.model_validate({"kind": "status", "status": 500, "match": {"model": "a"}}),
        Fault.model_validate({"kind": "reset", "match": {"stream": True}}),
    ])
    assert queue.take("b", False) is None  # neither applies: both stay queued
    first = queue.take("b", True)
    assert first is not None and first.kind == "reset"
    second = queue.take("a", False)
    assert second is not None and second.status == 500
    assert len(queue) == 0


def test_stream_only_kinds_wait_for_a_stream() -> None:
    queue = FaultQueue()
    queue.add(Fault(kind="cut_stream", after_chunks=2))
    assert queue.take("m", False) is None
    taken = queue.take("m", True)
    assert taken is not None and taken.kind == "cut_stream"


def test_pending_snapshot_counts_down() -> None:
    queue = FaultQueue()
    queue.add(Fault(kind="latency", seconds=0.1, times=3))
    queue.take(None, False)
    (entry,) = queue.pending()
    assert entry.remaining == 2 and entry.fault.seconds == 0.1


def test_to_error_classes() -> None:
    assert isinstance(Fault(kind="status", status=529).to_error("s"), Overloaded)
    assert isinstance(Fault(kind="status", status=429).to_error("s"), RateLimited)
    assert isinstance(Fault(kind="status", status=500).to_error("s"), ServerError)
    assert isinstance(Fault(kind="error_event").to_error("s"), Overloaded)
    refined = Fault(kind="status", status=400, error="context_length_exceeded").to_error("s")
    assert isinstance(refined, ContextWindowExceeded)
    assert refined.origin == "upstream"
