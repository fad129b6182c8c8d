"""Configuration: YAML -> validated `GatewayConfig` -> compiled `RuntimeConfig`.

Names are loaded lazily so that `turnout.config.policies` (imported by
`turnout.providers.types`) can be used without importing the whole package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turnout.config.compile import compile_config
    from turnout.config.errors import ConfigError
    from turnout.config.loader import (
        autodetect,
        check_config,
        describe_config,
        load_config,
        parse_config,
        validate_config,
    )
    from turnout.config.policies import (
        BalancePolicy,
        BreakerPolicy,
        HedgePolicy,
        RetryPolicy,
        RoutePolicy,
        TimeoutPolicy,
    )
    from turnout.config.runtime import (
        RuntimeConfig,
        ServerSettings,
        retired_local_servers,
        start_local_servers,
        stop_local_servers,
    )
    from turnout.config.schema import GatewayConfig

_EXPORTS = {
    "compile_config": "turnout.config.compile",
    "ConfigError": "turnout.config.errors",
    "autodetect": "turnout.config.loader",
    "check_config": "turnout.config.loader",
    "describe_config": "turnout.config.loader",
    "load_config": "turnout.config.loader",
    "parse_config": "turnout.config.loader",
    "validate_config": "turnout.config.loader",
    "BalancePolicy": "turnout.config.policies",
    "BreakerPolicy": "turnout.config.policies",
    "HedgePolicy": "turnout.config.policies",
    "RetryPolicy": "turnout.config.policies",
    "RoutePolicy": "turnout.config.policies",
    "TimeoutPolicy": "turnout.config.policies",
    "RuntimeConfig": "turnout.config.runtime",
    "ServerSettings": "turnout.config.runtime",
    "retired_local_servers": "turnout.config.runtime",
    "start_local_servers": "turnout.config.runtime",
    "stop_local_servers": "turnout.config.runtime",
    "GatewayConfig": "turnout.config.schema",
}

__all__ = [
    "BalancePolicy",
    "BreakerPolicy",
    "ConfigError",
    "GatewayConfig",
    "HedgePolicy",
    "RetryPolicy",
    "RoutePolicy",
    "RuntimeConfig",
    "ServerSettings",
    "TimeoutPolicy",
    "autodetect",
    "check_config",
    "compile_config",
    "describe_config",
    "load_config",
    "parse_config",
    "retired_local_servers",
    "start_local_servers",
    "stop_local_servers",
    "validate_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'turnout.config' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
