"""Per-deployment health signals for the balancers and the hedging delay.

`DeploymentHealth` keeps, in O(1) per update: calls in flight, an exponentially weighted
moving average (EWMA) of latency and of time to first token (TTFT), a ring of recent TTFT
samples for a percentile (sorted lazily on read, at most once per new sample), and the
rate-limit headroom an upstream reports in its response headers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from turnout.core.retry_after import parse_duration
from turnout.resilience.clock import Clock, SystemClock

_RATE_LIMIT_HEADERS: tuple[tuple[str, str, str, str | None], ...] = (
    # (dimension, remaining header, limit header, reset header with a Go-style duration)
    ("requests", "x-ratelimit-remaining-requests", "x-ratelimit-limit-requests",
     "x-ratelimit-reset-requests"),
    ("tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-limit-tokens",
     "x-ratelimit-reset-tokens"),
    # Anthropic's resets are RFC 3339 wall-clock times; the TTL covers them instead.
    ("requests", "anthropic-ratelimit-requests-remaining",
     "anthropic-ratelimit-requests-limit", None),
    ("tokens", "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-limit", None),
    ("input_tokens", "anthropic-ratelimit-input-tokens-remaining",
     "anthropic-ratelimit-input-tokens-limit", None),
    ("output_tokens", "anthropic-ratelimit-output-tokens-remaining",
     "anthropic-ratelimit-output-tokens-limit", None),
)


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Smoothing and memory of the health signals."""

    ewma_alpha: float = 0.3
    """Weight of the newest sample in the moving averages, in (0, 1]: higher reacts faster."""
    ttft_samples: int = 128
    """Recent TTFT samples kept for the percentile."""
    min_ttft_samples: int = 8
    """Below this many samples the percentile is unknown (`None`)."""
    ttft_quantile: float = 0.95
    """Which percentile `ttft_quantile_s` reports (the hedging delay's basis)."""
    rate_limit_ttl_s: float = 60.0
    """How long a reported headroom is believed: limits refill, and a deployment left idle
    because it looked exhausted would otherwise never be asked again."""

    def __post_init__(self) -> None:
        if not 0.0 < self.ewma_alpha <= 1.0:
            raise ValueError("ewma_alpha must be in (0, 1]")
        if self.ttft_samples < 1 or self.min_ttft_samples < 1:
            raise ValueError("ttft_samples and min_ttft_samples must be >= 1")
        if not 0.0 < self.ttft_quantile <= 1.0:
            raise ValueError("ttft_quantile must be in (0, 1]")
        if self.rate_limit_ttl_s <= 0:
            raise ValueError("rate_limit_ttl_s must be > 0")


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """What a balancer knows about one candidate deployment."""

    id: str
    weight: float = 1.0
    """The deployment's configured weight (not a health signal; carried for balancers)."""
    in_flight: int = 0
    ewma_latency_s: float | None = None
    """Smoothed total latency of successful calls; `None` before the first sample."""
    ewma_ttft_s: float | None = None
    ttft_quantile_s: float | None = None
    """The configured TTFT percentile (p95 by default) over recent samples."""
    headroom: float | None = None
    """Share (0..1) of the tightest reported rate limit still available; `None` unknown."""


class DeploymentHealth:
    """Health signals of one deployment. Owned by the executor, updated on every call."""

    __slots__ = (
        "_clock",
        "_ewma_latency",
        "_ewma_ttft",
        "_limits",
        "_settings",
        "_sorted",
        "_ttft",
        "_ttft_next",
        "deployment_id",
        "in_flight",
    )

    def __init__(
        self,
        deployment_id: str = "",
        clock: Clock | None = None,
        settings: HealthSettings | None = None,
    ) -> None:
        self.deployment_id = deployment_id
        """The id snapshots carry by default."""
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._settings = settings or HealthSettings()
        self.in_flight = 0
        """Calls started and not yet finished."""
        self._ewma_latency: float | None = None
        self._ewma_ttft: float | None = None
        self._ttft: list[float] = []
        self._ttft_next = 0
        self._sorted: list[float] | None = None
        self._limits: dict[str, tuple[float, float]] = {}
        """dimension -> (remaining fraction, clock time it stops being believed)."""

    # -- in flight ---------------------------------------------------------------------------

    def start(self) -> None:
        """A call to this deployment began."""
        self.in_flight += 1

    def finish(self) -> None:
        """A call ended, however it ended (pair every `start` with one `finish`)."""
        if self.in_flight > 0:
            self.in_flight -= 1

    # -- latency -----------------------------------------------------------------------------

    def observe_latency(self, seconds: float) -> None:
        """Record a successful call's total latency."""
        self._ewma_latency = self._ewma(self._ewma_latency, seconds)

    def observe_ttft(self, seconds: float) -> None:
        """Record a call's time to first token (first content of a stream)."""
        self._ewma_ttft = self._ewma(self._ewma_ttft, seconds)
        ring = self._ttft
        if len(ring) < self._settings.ttft_samples:
            ring.append(seconds)
        else:
            ring[self._ttft_next] = seconds
            self._ttft_next = (self._ttft_next + 1) % len(ring)
        self._sorted = None

    def _ewma(self, current: float | None, sample: float) -> float:
        if current is None:
            return sample
        return current + self._settings.ewma_alpha * (sample - current)

    @property
    def ewma_latency_s(self) -> float | None:
        return self._ewma_latency

    @property
    def ewma_ttft_s(self) -> float | None:
        return self._ewma_ttft

    def ttft_quantile(self, q: float | None = None) -> float | None:
        """The `q` quantile (default: the settings' percentile) of recent TTFT samples, by
        nearest rank; `None` until `min_ttft_samples` samples exist."""
        ring = self._ttft
        if len(ring) < self._settings.min_ttft_samples:
            return None
        if self._sorted is None:
            self._sorted = sorted(ring)
        quantile = self._settings.ttft_quantile if q is None else q
        rank = max(1, math.ceil(quantile * len(self._sorted)))
        return self._sorted[rank - 1]

    # -- rate limits -------------------------------------------------------------------------

    def update_rate_limits(self, headers: Mapping[str, str]) -> None:
        """Read OpenAI-style `x-ratelimit-remaining-*`/`x-ratelimit-limit-*` and Anthropic's
        `anthropic-ratelimit-*-remaining`/`-limit` headers (names lower-case, or a
        case-insensitive mapping). Missing, malformed or non-positive limits (Azure sends -1)
        leave that dimension as it was."""
        now = self._clock.monotonic()
        ttl = self._settings.rate_limit_ttl_s
        for dimension, remaining_name, limit_name, reset_name in _RATE_LIMIT_HEADERS:
            remaining_text = headers.get(remaining_name)
            limit_text = headers.get(limit_name)
            if remaining_text is None or limit_text is None:
                continue
            try:
                remaining, limit = float(remaining_text), float(limit_text)
            except ValueError:
                continue
            if not (limit > 0 and remaining >= 0 and math.isfinite(limit)):
                continue
            expires = now + ttl
            reset_text = headers.get(reset_name) if reset_name else None
            if reset_text is not None:
                reset = parse_duration(reset_text)
                if reset is not None:
                    expires = now + min(ttl, reset)
            self._limits[dimension] = (min(1.0, remaining / limit), expires)

    def note_rate_limited(self, retry_after: float | None = None) -> None:
        """The deployment answered 429: treat its headroom as zero until `retry_after`
        (or the TTL) passes, even if it sent no rate-limit headers."""
        ttl = self._settings.rate_limit_ttl_s
        wait = ttl if retry_after is None else min(ttl, max(0.0, retry_after))
        self._limits["requests"] = (0.0, self._clock.monotonic() + wait)

    @property
    def headroom(self) -> float | None:
        """The smallest believed remaining share over all reported dimensions (the first
        limit to run out is the one that bites); `None` when nothing current is known."""
        if not self._limits:
            return None
        now = self._clock.monotonic()
        tightest: float | None = None
        for fraction, expires in self._limits.values():
            if now < expires and (tightest is None or fraction < tightest):
                tightest = fraction
        return tightest

    def snapshot(self, weight: float = 1.0) -> HealthSnapshot:
        """A frozen view for the balancers; `weight` is the deployment's configured weight."""
        return self.candidate(self.deployment_id, weight)

    def candidate(self, deployment_id: str, weight: float = 1.0) -> HealthSnapshot:
        """`snapshot`, under an explicit id (for owners that key health objects by id)."""
        return HealthSnapshot(
            id=deployment_id,
            weight=weight,
            in_flight=self.in_flight,
            ewma_latency_s=self._ewma_latency,
            ewma_ttft_s=self._ewma_ttft,
            ttft_quantile_s=self.ttft_quantile(),
            headroom=self.headroom,
        )
