"""Runtime (compiled) descriptions of models, deployments and routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from turnout.config.policies import RoutePolicy
from turnout.core.scrub import NO_SECRETS, SecretScrubber
from turnout.dialects.base import UpstreamTarget
from turnout.pricing.table import Price

TOOLS = 1
"""Capability bit: tool (function) calling."""
VISION = 2
"""Capability bit: image input."""
JSON_SCHEMA = 4
"""Capability bit: a response constrained to a JSON schema."""
REASONING = 8
"""Capability bit: extended thinking / reasoning."""

CAPABILITIES: tuple[tuple[int, str], ...] = (
    (TOOLS, "tools"), (VISION, "vision"), (JSON_SCHEMA, "json_schema"),
    (REASONING, "reasoning"))
"""Each capability bit with the `ModelInfo` field (and config key) that declares it."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a model can do, from the bundled catalog or config overrides.

    Capabilities are tri-state: `True`, `False`, or `None` when nobody said (a model the
    catalog does not list). Only a declared `False` makes the engine skip a deployment or
    refuse a request, so a new model works before the catalog learns about it.
    """

    context_window: int | None = None
    max_output_tokens: int | None = None
    tools: bool | None = None
    vision: bool | None = None
    json_schema: bool | None = None
    reasoning: bool | None = None
    price: Price | None = None
    """The list price (bundled `pricing/prices.yaml` or config); None when unpriced."""
    lacks: int = field(init=False, repr=False, compare=False)
    """The capability bits declared `False`, derived once here so that checking a request
    against a deployment costs one `&` per attempt, not four attribute reads."""

    def __post_init__(self) -> None:
        lacks = sum(bit for bit, name in CAPABILITIES if getattr(self, name) is False)
        object.__setattr__(self, "lacks", lacks)


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
