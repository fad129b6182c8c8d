"""Runtime (compiled) descriptions of models, deployments and routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from turnout.config.policies import RoutePolicy
from turnout.core.scrub import NO_SECRETS, SecretScrubber
from turnout.dialects.base import UpstreamTarget


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a model can do, from the bundled catalog or config overrides."""

    context_window: int | None = None
    max_output_tokens: int | None = None
    tools: bool = True
    vision: bool = False
    json_schema: bool = False
    reasoning: bool = False
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None


@dataclass(frozen=True, slots=True)
class Deployment:
    """One callable model at one provider: the unit that breakers and balancers track."""

    id: str
    """Stable, unique name: `<provider>/<model>` unless config names it."""
    provider: str
    dialect: str
    """`openai_chat`, `anthropic_messages` or `gemini`."""
    target: UpstreamTarget
    info: ModelInfo = field(default_factory=ModelInfo)
    weight: float = 1.0
    priority: int = 0
    """Lower is tried first; equal priorities are load-balanced."""
    kind: str = ""
    """The provider row this deployment was built from (`openai`, `vllm`, `local`, ...)."""
    scrubber: SecretScrubber = field(default=NO_SECRETS, compare=False, repr=False)
    """Scrubs every secret of the config this deployment was compiled from out of the
    upstream's error text (any deployment's key: a misconfigured one may be sent to the
    wrong upstream, which then echoes it)."""


@dataclass(frozen=True, slots=True)
class Route:
    """What a client-visible model name (alias) resolves to: ordered deployments."""

    alias: str
    deployments: tuple[Deployment, ...]
    fallbacks: tuple[str, ...] = ()
    """Aliases to try, in order, after every deployment of this route failed."""
    policy: RoutePolicy = field(default_factory=RoutePolicy)
    """The router's default policy merged with this route's overrides."""
