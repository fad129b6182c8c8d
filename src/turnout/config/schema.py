"""The YAML configuration as strict, frozen pydantic models (unknown keys are rejected).

`GatewayConfig` is pure data: secrets stay references and nothing is started. Cross-key
rules (targets name existing providers, fallbacks name existing routes and form no
cycle, ...) are checked when the model is built, in `turnout.config.checks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from turnout.config.policies import RoutePolicy
from turnout.config.secrets import SecretRef
from turnout.config.shared_state import SharedStateConfig
from turnout.config.tenancy import TenancyConfig
from turnout.local.model import BUNDLED_MODEL_NAME
from turnout.providers.catalog import ModelFields
from turnout.providers.rows import PROVIDER_ROWS

_STRICT = ConfigDict(extra="forbid", frozen=True)
MIB = 1024 * 1024


class ServerConfig(BaseModel):
    """The HTTP gateway's own settings."""

    model_config = _STRICT

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    max_body_bytes: int = Field(10 * MIB, gt=0)
    gateway_keys: tuple[SecretRef, ...] = ()
    """Keys clients must present. Also read, comma-separated, from TURNOUT_GATEWAY_KEYS.
    No keys at all means the gateway does not authenticate clients."""
    request_timeout_s: float | None = Field(None, gt=0)
    """Hard cap on one HTTP request; `null` leaves it to the route's `timeouts.total_s`."""
    metrics_key: SecretRef | None = None
    """The key `/metrics` and `/readyz` details ask for; `null`: the gateway keys do."""
    public_metrics: bool = False
    """Serve `/metrics` and `/readyz` details without any key (a private network's
    scraper)."""
    drain_timeout_s: float = Field(25.0, ge=0)
    """On SIGTERM or SIGINT, how long requests in flight may take to finish; then streams
    end with the dialect's error event and unanswered requests get 503. The default ends
    the drain inside Kubernetes' default 30 s grace period, before its SIGKILL."""


class _RemoteProvider(BaseModel):
    model_config = _STRICT

    api_key: SecretRef | None = None
    """Defaults to the kind's usual environment variable (e.g. OPENAI_API_KEY)."""
    base_url: str | None = None
    """Defaults to the kind's public endpoint. Written as the vendor's SDK takes it:
    Anthropic and Gemini the host root (their version path is added unless the URL ends
    in one), OpenAI-compatible servers the API root with its `/v1`."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers sent with every upstream call."""

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")


class OpenAIProvider(_RemoteProvider):
    """OpenAI's Chat Completions API."""

    kind: Literal["openai"]


class AnthropicProvider(_RemoteProvider):
    """Anthropic's Messages API."""

    kind: Literal["anthropic"]


class GeminiProvider(_RemoteProvider):
    """Google's Gemini API (key from GEMINI_API_KEY or GOOGLE_API_KEY)."""

    kind: Literal["gemini"]


class OpenRouterProvider(_RemoteProvider):
    """OpenRouter, with its optional app attribution headers."""

    kind: Literal["openrouter"]
    referer: str | None = None
    """Sent as `HTTP-Referer`: your app's URL, for OpenRouter's rankings."""
    title: str | None = None
    """Sent as `X-Title`: your app's name."""


class CompatibleProvider(_RemoteProvider):
    """An OpenAI-compatible server: generic (`base_url` required) or a named preset."""

    kind: Literal["openai_compatible", "vllm", "ollama", "llamacpp", "lmstudio"]

    @model_validator(mode="after")
    def _need_url(self) -> CompatibleProvider:
        if self.kind == "openai_compatible" and self.base_url is None:
            raise ValueError("base_url is required for kind 'openai_compatible'")
        return self


class LocalProvider(BaseModel):
    """The embedded llama.cpp model, run in-process on a loopback port."""

    model_config = _STRICT

    kind: Literal["local"] = "local"
    model_path: str | None = None
    """A GGUF file; `null` uses the bundled SmolLM2-135M-Instruct. Relative paths are
    relative to the config file."""
    model_name: str | None = None
    """The model id it answers to; default `smollm2` for the bundled model, else the file
    name without `.gguf`."""
    context_window: int = Field(4096, ge=256)
    """llama.cpp's n_ctx: the longest prompt plus output one request may use."""
    start: Literal["lazy", "startup"] = "lazy"
    """`lazy` loads the model on its first request; `startup` when the gateway starts."""
    port: int = Field(0, ge=0, le=65535)
    """Loopback port; 0 picks a free one."""
    parallel: int = Field(2, ge=1)
    """Requests decoded concurrently (llama.cpp slots)."""
    threads: int | None = Field(None, ge=1)
    """CPU threads; `null` lets llama.cpp decide."""

    @field_validator("model_path")
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        base_dir = (info.context or {}).get("base_dir")
        return str(Path(base_dir) / path) if base_dir is not None else str(path)

    @property
    def served_model(self) -> str:
        """The model id this local provider answers to."""
        if self.model_name:
            return self.model_name
        if self.model_path is None:
            return BUNDLED_MODEL_NAME
        return Path(self.model_path).name.removesuffix(".gguf")


ProviderConfig = Annotated[
    OpenAIProvider | AnthropicProvider | GeminiProvider | OpenRouterProvider
    | CompatibleProvider | LocalProvider,
    Field(discriminator="kind"),
]


class TargetConfig(BaseModel):
    """One model at one provider, as a candidate of a route."""

    model_config = _STRICT

    provider: str
    model: str = Field(min_length=1)
    """The provider's own model id."""
    weight: float = Field(1.0, gt=0)
    """Share of traffic among targets of equal priority."""
    priority: int = Field(0, ge=0)
    """Lower is tried first."""
    id: str | None = Field(None, min_length=1)
    """Deployment id for breakers and metrics; default `<provider>/<model>`."""

    @property
    def deployment_id(self) -> str:
        return self.id or f"{self.provider}/{self.model}"


class RouteConfig(BaseModel):
    """What one client-visible model name resolves to."""

    model_config = _STRICT

    targets: tuple[TargetConfig, ...] = Field(min_length=1)
    fallbacks: tuple[str, ...] = ()
    """Other routes tried, in order, once every target of this one failed."""
    policy: RoutePolicy | None = None
    """Overrides of `router.policy`; only the keys written here replace the defaults."""


class RouterConfig(BaseModel):
    """Defaults shared by every route."""

    model_config = _STRICT

    policy: RoutePolicy = Field(default_factory=RoutePolicy)


class GatewayConfig(BaseModel):
    """The whole configuration file."""

    model_config = _STRICT

    server: ServerConfig = Field(default_factory=ServerConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelFields] = Field(default_factory=dict)
    """Catalog overrides, keyed `<provider>/<model>` (provider as named in `providers`)."""
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    router: RouterConfig = Field(default_factory=RouterConfig)
    local: LocalProvider | None = Field(default_factory=LocalProvider)
    """The built-in local model: `true` (default), `false`, or its settings."""
    tenancy: TenancyConfig | None = None
    """Tenants and virtual keys (absent: single-tenant, gateway keys only)."""
    state: SharedStateConfig = Field(default_factory=SharedStateConfig)
    """What replicas share (absent: in-process state)."""

    _builtin_routes: tuple[str, ...] = PrivateAttr(default=())

    @property
    def builtin_routes(self) -> tuple[str, ...]:
        """Aliases the built-in local model added (`local`, `default`, `smollm2`), in
        `routes` order; every other route was written by the user (or autodetected)."""
        return self._builtin_routes

    @model_validator(mode="wrap")
    @classmethod
    def _expand(cls, data: Any, handler: ModelWrapValidatorHandler[GatewayConfig],
                info: ValidationInfo) -> GatewayConfig:
        if isinstance(data, GatewayConfig):
            return handler(data)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return handler(data)
        # An empty YAML section (`routes:`) parses as None: treat it as absent.
        data = {k: v for k, v in data.items() if v is not None or k == "local"}
        providers = data.get("providers")
        if isinstance(providers, dict):
            data["providers"] = {name: _with_kind(name, value)
                                 for name, value in providers.items()}
        written = data.get("routes")
        written = set(written) if isinstance(written, dict) else set()
        data = _add_builtin_local(data, info.context)
        config = handler(data)
        # Recorded here, where it is still known, so startup can say where routes came from.
        config._builtin_routes = tuple(a for a in config.routes if a not in written)
        return config

    @model_validator(mode="after")
    def _cross_check(self) -> GatewayConfig:
        from turnout.config.checks import cross_check
        from turnout.config.errors import ConfigProblems

        problems = cross_check(self)
        if problems:
            raise ConfigProblems(problems)
        return self


def _with_kind(name: str, value: Any) -> Any:
    # `openai: {api_key: ...}` means kind openai: a provider named after a kind may omit it.
    if isinstance(value, dict) and "kind" not in value and name in PROVIDER_ROWS:
        return {**value, "kind": name}
    return value


def _add_builtin_local(data: dict[str, Any], context: Any) -> dict[str, Any]:
    """Add the built-in local provider (named `local`) and its routes `local`, `default`
    and, for the bundled model, `smollm2`, without replacing anything the user defined."""
    block = data.get("local", True)
    if block is True:
        block = {}
    if block is False or block is None:
        data["local"] = None
        return data
    if not isinstance(block, dict):
        return data  # field validation reports it
    data["local"] = block
    try:
        LocalProvider.model_validate(block, context=context)
    except ValidationError:
        return data  # reported once, under `local`
    if not isinstance(data.get("providers", {}), dict):
        return data
    providers = dict(data.get("providers", {}))
    if block and "local" in providers:
        from turnout.config.errors import ConfigProblems

        raise ConfigProblems([("local", "settings given both here and for the provider named "
                                        "'local'; keep one (or `local: false`)")])
    providers.setdefault("local", {**block, "kind": "local"})
    data["providers"] = providers
    raw = providers["local"]
    if not isinstance(raw, dict) or raw.get("kind") != "local":
        return data
    try:
        local = LocalProvider.model_validate(raw, context=context)
    except ValidationError:
        return data
    routes = data.get("routes", {})
    if not isinstance(routes, dict):
        return data
    routes = dict(routes)
    target = {"provider": "local", "model": local.served_model}
    aliases = ["local", "default"]
    if local.model_path is None:
        aliases.append(BUNDLED_MODEL_NAME)
    for alias in aliases:
        routes.setdefault(alias, {"targets": [target]})
    data["routes"] = routes
    return data
