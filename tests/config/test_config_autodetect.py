"""No config file: providers from the environment, plus the built-in local model."""

from __future__ import annotations

from turnout.config import compile_config, load_config
from turnout.providers.catalog import bundled_catalog


def test_empty_environment_gives_only_the_local_model() -> None:
    config = load_config(None, {})
    assert list(config.providers) == ["local"]
    assert config.providers["local"].kind == "local"
    assert set(config.routes) == {"local", "smollm2", "default"}
    for alias in ("local", "smollm2", "default"):
        [target] = config.routes[alias].targets
        assert (target.provider, target.model) == ("local", "smollm2")


def test_each_present_key_adds_its_provider_and_one_route_per_catalog_model() -> None:
    env = {"OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a", "HOME": "/x"}
    config = load_config(None, env)
    assert list(config.providers) == ["openai", "anthropic", "local"]
    openai = config.providers["openai"]
    assert openai.kind == "openai"
    assert openai.api_key is not None and openai.api_key.env == "OPENAI_API_KEY"
    catalog = bundled_catalog()
    expected = set(catalog["openai"]) | set(catalog["anthropic"]) | {"local", "smollm2",
                                                                     "default"}
    assert set(config.routes) == expected
    [target] = config.routes["gpt-4o-mini"].targets
    assert (target.provider, target.model) == ("openai", "gpt-4o-mini")
    [target] = config.routes["claude-sonnet-4-5"].targets
    assert (target.provider, target.model) == ("anthropic", "claude-sonnet-4-5")
    assert "gemini-2.5-flash" not in config.routes


def test_gemini_key_from_either_variable_prefers_gemini_api_key() -> None:
    google_only = load_config(None, {"GOOGLE_API_KEY": "g"}).providers["gemini"]
    assert google_only.api_key is not None and google_only.api_key.env == "GOOGLE_API_KEY"
    both = load_config(None, {"GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "m"}).providers["gemini"]
    assert both.api_key is not None and both.api_key.env == "GEMINI_API_KEY"


def test_openrouter_routes_use_vendor_model_ids() -> None:
    config = load_config(None, {"OPENROUTER_API_KEY": "or"})
    assert "openai/gpt-4o-mini" in config.routes
    [target] = config.routes["openai/gpt-4o-mini"].targets
    assert (target.provider, target.model) == ("openrouter", "openai/gpt-4o-mini")


def test_empty_variable_counts_as_absent() -> None:
    assert "openai" not in load_config(None, {"OPENAI_API_KEY": ""}).providers


def test_autodetected_config_compiles_with_keys_from_the_environment() -> None:
    env = {"OPENAI_API_KEY": "sk-o", "GEMINI_API_KEY": "gm"}
    runtime = compile_config(load_config(None, env), env)
    dep = runtime.routes["gpt-4o"].deployments[0]
    assert dep.target.api_key == "sk-o"
    assert dep.target.base_url == "https://api.openai.com/v1"
    gem = runtime.routes["gemini-2.5-pro"].deployments[0]
    assert (gem.dialect, gem.target.api_key) == ("gemini", "gm")
    assert runtime.routes["default"].deployments[0].kind == "local"
