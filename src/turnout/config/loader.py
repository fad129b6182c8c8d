"""Reading configuration: a YAML file, or defaults plus environment autodetection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from turnout.config.errors import ConfigError, format_validation_error
from turnout.config.schema import GatewayConfig
from turnout.providers.catalog import Catalog, bundled_catalog
from turnout.providers.rows import AUTODETECT_KINDS, PROVIDER_ROWS, find_env_key


def load_config(path: str | Path | None, environ: Mapping[str, str]) -> GatewayConfig:
    """Validate the YAML file at `path`; with no path, build the default configuration
    from `environ` (see `autodetect`). Raises `ConfigError` with one line per problem."""
    if path is None:
        return validate_config(autodetect(environ))
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror or exc}"],
                          source=str(path)) from None
    return parse_config(text, source=str(path), base_dir=path.resolve().parent)


def parse_config(
    text: str, *, source: str | None = None, base_dir: Path | None = None
) -> GatewayConfig:
    """Validate YAML text. Relative file paths in it are taken relative to `base_dir`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}YAML syntax error: {problem}"], source=source) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping of sections, got "
                           f"{type(data).__name__}"], source=source)
    return validate_config(data or {}, source=source, base_dir=base_dir)


def validate_config(
    data: Mapping[str, Any], *, source: str | None = None, base_dir: Path | None = None
) -> GatewayConfig:
    """Validate already-parsed configuration data."""
    context = {"base_dir": base_dir} if base_dir is not None else None
    try:
        return GatewayConfig.model_validate(dict(data), context=context)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, GatewayConfig),
                          source=source) from None


def autodetect(environ: Mapping[str, str], catalog: Catalog | None = None) -> dict[str, Any]:
    """The configuration used when no file is given, as raw data.

    For each hosted provider whose key variable is set (OPENAI_API_KEY, ANTHROPIC_API_KEY,
    GEMINI_API_KEY or GOOGLE_API_KEY, OPENROUTER_API_KEY) it adds the provider, named
    after its kind, and one route per catalog model, the alias being the model id. The
    built-in local model (routes `local`, `smollm2`, `default`) is added by the schema.
    A model id already taken by an earlier provider keeps its first route.
    """
    cat = catalog if catalog is not None else bundled_catalog()
    providers: dict[str, Any] = {}
    routes: dict[str, Any] = {}
    for kind in AUTODETECT_KINDS:
        row = PROVIDER_ROWS[kind]
        var = find_env_key(row, environ)
        if var is None:
            continue
        providers[kind] = {"kind": kind, "api_key": {"env": var}}
        for model in cat.get(row.catalog or kind, {}):
            routes.setdefault(model, {"targets": [{"provider": kind, "model": model}]})
    return {"providers": providers, "routes": routes}


def check_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem with a configuration, as printable lines (empty when it is valid).

    Validates and compiles it (resolving secrets, checking model files) without starting
    anything. For `turnout check CONFIG`.
    """
    from turnout.config.compile import compile_config

    env = os.environ if environ is None else environ
    try:
        compile_config(load_config(path, env), env)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def describe_config(config: GatewayConfig) -> list[str]:
    """A short human summary (providers and routes) for `turnout check` output."""
    lines = [f"providers: {', '.join(f'{n} ({p.kind})' for n, p in config.providers.items())}"]
    for alias, route in config.routes.items():
        targets = ", ".join(t.deployment_id for t in route.targets)
        extra = f" -> fallbacks {', '.join(route.fallbacks)}" if route.fallbacks else ""
        lines.append(f"route {alias}: {targets}{extra}")
    return lines
