"""The compiled, immutable configuration the gateway and engine run on.

A hot reload compiles a new `RuntimeConfig` and swaps the reference atomically; nothing
in here is ever mutated. Local model servers are the one piece with a lifecycle: the
helpers below start the eager ones and stop the ones a reload left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from turnout.config.policies import RoutePolicy
from turnout.core.scrub import NO_SECRETS, SecretScrubber
from turnout.local.server import LocalModelServer
from turnout.providers.types import Deployment, Route


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The HTTP gateway's settings, secrets resolved."""

    host: str = "127.0.0.1"
    port: int = 4000
    max_body_bytes: int = 10 * 1024 * 1024
    gateway_keys: frozenset[str] = frozenset()
    """Accepted client keys; empty means the gateway does not authenticate clients."""
    request_timeout_s: float | None = None
    metrics_key: str | None = None
    """The key for `/metrics` and `/readyz` details; None: the gateway keys open them."""
    public_metrics: bool = False
    """`/metrics` and `/readyz` details need no key at all."""
    drain_timeout_s: float = 25.0
    """How long a shutdown waits for requests in flight."""


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A master key that seals tenants' provider keys (`tenancy.master_keys`)."""

    id: str
    key: bytes = field(repr=False)
    """32 bytes (AES-256)."""


@dataclass(frozen=True, slots=True)
class TenancySettings:
    """Tenancy with its secrets resolved."""

    database_url: str = field(repr=False)
    admin_key: str | None = field(default=None, repr=False)
    key_cache_s: float = 1.0
    budget_timezone: str = "UTC"
    master_keys: tuple[MasterKey, ...] = ()
    """The first seals tenants' provider keys, every one opens them; empty: tenants cannot
    bring their own keys."""
    byok_providers: frozenset[str] = frozenset()
    """The configured providers tenants may store keys for (empty without master keys)."""
    spend_journal: str = "turnout-spend-journal"
    """The spend ledger's journal directory."""


@dataclass(frozen=True, slots=True)
class SharedStateSettings:
    """The `state:` section with its secrets resolved."""

    redis_url: str | None = field(default=None, repr=False)
    """None: in-process state."""
    prefix: str = "turnout"
    budgets_when_down: str = "fail_closed"
    """`fail_closed` or `local_slice`."""
    local_slice: float = 0.1


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Everything the engine needs, compiled from a `GatewayConfig`."""

    server: ServerSettings = field(default_factory=ServerSettings)
    tenancy: TenancySettings | None = None
    """Tenants and virtual keys; None for a single-tenant gateway."""
    state: SharedStateSettings = field(default_factory=SharedStateSettings)
    """Where replicas share counters, reservations and resilience state."""
    routes: Mapping[str, Route] = field(default_factory=lambda: MappingProxyType({}))
    """Client-visible model name -> route."""
    deployments: Mapping[str, Deployment] = field(
        default_factory=lambda: MappingProxyType({}))
    """Every distinct deployment by id, with route-independent fields (weight 1,
    priority 0); a route's own weights and priorities are in `Route.deployments`."""
    local_servers: Mapping[str, LocalModelServer] = field(
        default_factory=lambda: MappingProxyType({}))
    """Local providers by provider name. Before sending to a deployment whose `provider`
    is a key here, await `local_servers[provider].ensure_started()`."""
    policies: Mapping[str, RoutePolicy] = field(
        default_factory=lambda: MappingProxyType({}))
    """Route alias -> merged policy (the same object as `routes[alias].policy`)."""
    scrubber: SecretScrubber = NO_SECRETS
    """Scrubs this config's secrets (provider keys, gateway keys, secret files) out of
    text; every deployment holds the same one."""
    builtin_routes: tuple[str, ...] = ()
    """Aliases the built-in local model added, not the config file (`local: false` there
    drops them); see `describe_routes`."""

    def describe_routes(self, source: str | None) -> str:
        """One line saying which routes came from where, for startup and `turnout check`:
        `routes: fast, smart (turnout.yaml); local, default, smollm2 (built-in local model;
        `local: false` to drop them)`. `source` is the config file, None for none."""
        own = [alias for alias in self.routes if alias not in self.builtin_routes]
        builtin = [alias for alias in self.routes if alias in self.builtin_routes]
        groups: list[str] = []
        if own:
            origin = source if source is not None else "provider keys in the environment"
            groups.append(f"{', '.join(own)} ({origin})")
        if builtin:
            hint = "; `local: false` to drop them" if source is not None else ""
            groups.append(f"{', '.join(builtin)} (built-in local model{hint})")
        return "routes: " + ("; ".join(groups) or "none")

    def local_server_for(self, deployment: Deployment) -> LocalModelServer | None:
        """The local server behind `deployment`, if it is a local one."""
        return self.local_servers.get(deployment.provider)


async def start_local_servers(runtime: RuntimeConfig) -> None:
    """Start every `start: startup` local server, concurrently. Raises the first failure
    after all attempts finished (a failed server stays `failed: ...` and retries lazily)."""
    servers = [s for s in runtime.local_servers.values() if s.start_mode == "startup"]
    results = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def retired_local_servers(old: RuntimeConfig, new: RuntimeConfig) -> list[LocalModelServer]:
    """Servers of `old` that `new` does not reuse: stop them after swapping configs."""
    kept = {id(s) for s in new.local_servers.values()}
    return [s for s in old.local_servers.values() if id(s) not in kept]


async def stop_local_servers(servers: Iterable[LocalModelServer]) -> None:
    """Stop the given servers concurrently."""
    await asyncio.gather(*(s.stop() for s in servers))
