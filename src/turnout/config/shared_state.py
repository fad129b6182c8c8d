"""The `state:` section: where what replicas must share lives (rate-limit counters, budget
reservations, circuit breakers and `Retry-After` cooldowns).

Absent, state is in-process: right for one gateway process and for `turnout.Client`.
With `redis:` every replica shares it; `when_down` says what happens while Redis is away.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from turnout.config.secrets import SecretRef


class WhenDown(BaseModel):
    """What the gateway does while the shared store cannot be reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budgets: Literal["fail_closed", "local_slice"] = "fail_closed"
    """`fail_closed`: a call under a hard budget is refused (503) until Redis is back;
    `local_slice`: each replica spends up to `local_slice` of each hard budget on its own.
    Rate limits always fall back to per-process limits (the same limit in each process)."""
    local_slice: float = Field(0.1, gt=0, le=1)
    """The fraction of a hard budget one replica may spend alone while Redis is down."""


class SharedStateConfig(BaseModel):
    """Shared state across replicas."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis: str | SecretRef | None = None
    """`redis://HOST:PORT/DB` (or `rediss://`); with a password, a secret reference
    (`{env: TURNOUT_REDIS_URL}`). Absent: in-process state."""
    prefix: str = Field("turnout", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Prefix of every Redis key, so several gateways can share one Redis."""
    when_down: WhenDown = Field(default_factory=WhenDown)

    @field_validator("redis")
    @classmethod
    def _check_url(cls, value: str | SecretRef | None) -> str | SecretRef | None:
        if value is None or isinstance(value, SecretRef):
            return value
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("expected redis://HOST:PORT/DB, rediss://... or unix://PATH")
        if parts.password:
            raise ValueError("a Redis password must not be written in the config: give the "
                             "URL as {env: NAME} or {file: PATH}")
        return value
