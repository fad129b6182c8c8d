"""How an attempt's error bears on the deployment's health."""

from __future__ import annotations

from turnout.config.policies import fallback_reason
from turnout.core.errors import TurnoutError

# Failures that say the deployment itself is unhealthy. A 429 is handled by a cooldown of
# the asked length instead (the deployment is healthy, just busy); a context-window or
# content-filter error, or a bad request, says nothing about health at all.
_HEALTH_FAILURES = frozenset(
    {"overloaded", "server_error", "timeout", "connection", "malformed_response"}
)


def counts_against_deployment(error: TurnoutError) -> bool:
    """Whether breakers should record this outcome as a failure. Only real upstream
    outcomes count, never the gateway's own rejections."""
    return error.origin == "upstream" and fallback_reason(error) in _HEALTH_FAILURES
