"""Errors of the shared-state stores.

A store backed by a server (Redis) raises `StateUnavailable` when the server cannot be
reached or cannot answer, and never its client library's own exceptions: the stage that
calls the store decides whether to fall back to per-process limits or to fail closed, and
it must be able to do so without importing (or even installing) that library.
"""

from __future__ import annotations

from turnout.core.errors import TurnoutError


class StateUnavailable(TurnoutError):
    """The shared-state server could not be reached or did not answer.

    It is a `TurnoutError` so that a stage that fails closed can simply let it propagate:
    the client then gets a 503. `__cause__` holds the client library's original error.
    """

    status, code = 503, "state_unavailable"
    # Not retryable by the executor: the failure is the gateway's own state, not an
    # upstream's, and another upstream attempt would meet the same store.
    retryable = False
