"""compile_config: secrets, endpoints, deployments, routes, catalog facts and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.config import (
    ConfigError,
    RuntimeConfig,
    check_config,
    compile_config,
    load_config,
    parse_config,
)
from turnout.config.runtime import retired_local_servers
from turnout.local import bundled_model_path
from turnout.providers.types import REASONING

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "turnout.yaml"
PRODUCTION = EXAMPLE.with_name("production.yaml")


def compile_text(text: str, env: dict[str, str] | None = None) -> RuntimeConfig:
    return compile_config(parse_config(text), env or {})


def compile_problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        compile_text(text, env)
    return info.value.problems


def test_missing_env_var_names_provider_and_variable() -> None:
    lines = compile_problems("providers:\n  gpt: {kind: openai, api_key: {env: MY_OPENAI}}\n")
    assert lines == ["providers.gpt.api_key: environment variable MY_OPENAI is not set "
                     "(needed by provider 'gpt')"]


def test_missing_default_key_variable_names_every_candidate() -> None:
    lines = compile_problems("providers:\n  g: {kind: gemini}\n  a: {kind: anthropic}\n")
    assert lines == [
        "providers.g.api_key: no api_key given and environment variable GEMINI_API_KEY or "
        "GOOGLE_API_KEY is not set (needed by provider 'g')",
        "providers.a.api_key: no api_key given and environment variable ANTHROPIC_API_KEY "
        "is not set (needed by provider 'a')",
    ]


def test_keys_come_from_references_or_the_kind_default_variable(tmp_path: Path) -> None:
    (tmp_path / "or.key").write_text("sk-or-from-file\n")
    (tmp_path / "gw.yaml").write_text("""
providers:
  openai: {}
  or: {kind: openrouter, api_key: {file: or.key}, referer: "https://app", title: App}
  g: {kind: gemini}
routes:
  a:
    targets:
      - {provider: openai, model: gpt-4o}
      - {provider: or, model: openai/gpt-4o-mini}
      - {provider: g, model: gemini-2.5-flash}
""")
    env = {"OPENAI_API_KEY": "sk-env", "GOOGLE_API_KEY": "goog"}
    runtime = compile_config(load_config(tmp_path / "gw.yaml", env), env)
    openai, router, gemini = runtime.routes["a"].deployments
    assert openai.target.api_key == "sk-env"
    assert router.target.api_key == "sk-or-from-file"
    assert router.target.headers == {"HTTP-Referer": "https://app", "X-Title": "App"}
    assert router.target.base_url == "https://openrouter.ai/api/v1"
    assert gemini.target.api_key == "goog"
    assert gemini.target.base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert (gemini.dialect, gemini.kind) == ("gemini", "gemini")


def test_unreadable_secret_file(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("providers:\n  openai: {api_key: {file: missing.key}}\n")
    with pytest.raises(ConfigError) as info:
        compile_config(load_config(config, {}), {})
    [line] = info.value.problems
    assert line.startswith("providers.openai.api_key: cannot read secret file ")
    assert str(tmp_path / "missing.key") in line


def test_self_hosted_presets_need_no_key() -> None:
    runtime = compile_text("""
providers:
  box: {kind: vllm}
  ol: {kind: ollama}
  cpp: {kind: llamacpp, headers: {X-Team: infra}}
  studio: {kind: lmstudio}
  any: {kind: openai_compatible, base_url: "http://10.1.2.3:9000/v1/"}
routes:
  r:
    targets:
      - {provider: box, model: m}
      - {provider: ol, model: m}
      - {provider: cpp, model: m}
      - {provider: studio, model: m}
      - {provider: any, model: m}
""")
    deps = runtime.routes["r"].deployments
    assert [d.target.base_url for d in deps] == [
        "http://localhost:8000/v1", "http://localhost:11434/v1", "http://localhost:8080/v1",
        "http://localhost:1234/v1", "http://10.1.2.3:9000/v1"]
    assert all(d.dialect == "openai_chat" and d.target.api_key is None for d in deps)
    assert deps[2].target.headers == {"X-Team": "infra"}


def test_routes_deployments_and_policies() -> None:
    runtime = compile_text("""
providers:
  box: {kind: vllm}
routes:
  fast:
    targets:
      - {provider: box, model: slow-model, priority: 1}
      - {provider: box, model: m1, weight: 3}
      - {provider: box, model: m2, id: second}
    fallbacks: [local]
    policy: {retry: {max_attempts_total: 2}}
  other:
    targets: [{provider: box, model: m1, weight: 5, priority: 2}]
""")
    fast = runtime.routes["fast"]
    assert [d.id for d in fast.deployments] == ["box/m1", "second", "box/slow-model"]
    assert [(d.weight, d.priority) for d in fast.deployments] == [(3, 0), (1, 0), (1, 1)]
    assert fast.fallbacks == ("local",)
    assert fast.policy.retry.max_attempts_total == 2
    assert runtime.policies["fast"] is fast.policy
    assert runtime.policies["other"].retry.max_attempts_total == 6
    # one shared deployment per id, with route-independent weight and priority
    assert set(runtime.deployments) == {"box/m1", "second", "box/slow-model", "local/smollm2"}
    assert (runtime.deployments["box/m1"].weight, runtime.deployments["box/m1"].priority) == (
        1.0, 0)
    # deployments never share a mutable headers dict
    assert fast.deployments[0].target.headers is not fast.deployments[1].target.headers


def test_catalog_facts_and_overrides() -> None:
    env = {"OPENAI_API_KEY": "k"}
    runtime = compile_text("""
providers: {openai: {}}
models:
  "openai/gpt-4o-mini": {context_window: 64000, price: null}
  "openai/my-finetune": {context_window: 16000, vision: true, price: {input: "3", output: "12"}}
routes:
  a:
    targets:
      - {provider: openai, model: gpt-4o-mini}
      - {provider: openai, model: gpt-4o}
      - {provider: openai, model: my-finetune}
""", env)
    mini, four, tuned = runtime.routes["a"].deployments
    assert mini.info.context_window == 64000
    assert mini.info.price is None  # cleared: unpriced
    assert four.info.price is not None and four.info.price.output == 10  # bundled price
    assert four.info.context_window == 128000 and four.info.vision
    assert tuned.info.context_window == 16000 and tuned.info.vision
    assert tuned.info.price is not None and tuned.info.price.source == "config"
    assert (tuned.info.price.input, tuned.info.price.output) == (3, 12)
    assert tuned.info.max_output_tokens is None  # not in the catalog
    assert tuned.info.tools is None and tuned.info.lacks == 0  # unknown, not absent


def test_overrides_declare_capabilities_of_the_local_model() -> None:
    """A local model served with a tool-calling template can say so; `null` makes a flag
    unknown again (never a reason to skip)."""
    runtime = compile_text("""
models:
  "local/smollm2": {tools: true, vision: null, max_output_tokens: 512}
""")
    dep = runtime.routes["local"].deployments[0]
    assert (dep.info.tools, dep.info.vision, dep.info.reasoning) == (True, None, False)
    assert dep.info.lacks == REASONING
    assert dep.info.max_output_tokens == 512


def test_gateway_keys_from_config_and_environment() -> None:
    runtime = compile_text("server:\n  gateway_keys: [{env: K1}]\n  port: 8080\n",
                           {"K1": "one", "TURNOUT_GATEWAY_KEYS": " two, ,three "})
    assert runtime.server.gateway_keys == frozenset({"one", "two", "three"})
    assert runtime.server.port == 8080
    assert runtime.server.max_body_bytes == 10 * 1024 * 1024
    assert compile_text("").server.gateway_keys == frozenset()


def test_one_scrubber_knows_every_resolved_secret(tmp_path: Path) -> None:
    (tmp_path / "a.key").write_text("file-secret-0123456789\n")
    (tmp_path / "gw.yaml").write_text("""
server: {gateway_keys: [{env: GW}]}
providers:
  openai: {}
  a: {kind: anthropic, api_key: {file: a.key}}
  proxy:
    kind: openai_compatible
    base_url: http://proxy.internal/v1
    headers: {X-Proxy-Token: header-secret-0123456789, X-Title: App Name}
routes:
  r:
    targets:
      - {provider: openai, model: gpt-4o}
      - {provider: a, model: claude-haiku-4-5}
      - {provider: proxy, model: m}
""")
    env = {"OPENAI_API_KEY": "env-secret-0123456789", "GW": "gateway-secret-0123456789",
           "TURNOUT_GATEWAY_KEYS": "listed-secret-0123456789"}
    runtime = compile_config(load_config(tmp_path / "gw.yaml", env), env)
    text = ("file-secret-0123456789 env-secret-0123456789 gateway-secret-0123456789 "
            "listed-secret-0123456789 header-secret-0123456789 App Name")
    assert runtime.scrubber.scrub(text) == " ".join(["[redacted]"] * 5) + " App Name"
    deployments = [*runtime.routes["r"].deployments, *runtime.deployments.values()]
    assert all(d.scrubber is runtime.scrubber for d in deployments)


def test_local_provider_compiles_to_a_stopped_server() -> None:
    runtime = compile_text("""
local: false
providers:
  mine: {kind: local, context_window: 2048, parallel: 3, start: startup}
routes:
  tiny: {targets: [{provider: mine, model: smollm2}]}
""")
    server = runtime.local_servers["mine"]
    assert server.status == "stopped" and not server.ready
    assert server.start_mode == "startup"
    assert server.settings.n_ctx == 2048 and server.settings.n_parallel == 3
    assert server.settings.model_path == bundled_model_path()
    [dep] = runtime.routes["tiny"].deployments
    assert dep.target.base_url == server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert dep.target.api_key == server.api_key
    assert dep.target.headers == {"Connection": "close"}
    assert (dep.kind, dep.dialect) == ("local", "openai_chat")
    assert dep.info.context_window == 2048  # the served n_ctx, not the model's 8k
    assert dep.info.tools is False
    assert dep.info.max_output_tokens == 2048  # nor can it write more than n_ctx
    assert runtime.local_server_for(dep) is server
    assert set(runtime.routes) == {"tiny"}


def test_local_model_file_must_exist(tmp_path: Path) -> None:
    lines = compile_problems(f"local: {{model_path: {tmp_path / 'nope.gguf'}}}\n")
    assert lines == [f"providers.local.model_path: model file not found: "
                     f"{tmp_path / 'nope.gguf'}"]


def test_custom_gguf_is_named_after_its_file(tmp_path: Path) -> None:
    gguf = tmp_path / "qwen2.5-0.5b.gguf"
    gguf.write_bytes(b"GGUF")
    config = parse_config(f"local: {{model_path: {gguf}}}\n")
    assert set(config.routes) == {"local", "default"}
    assert config.routes["local"].targets[0].model == "qwen2.5-0.5b"


def test_relative_model_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "gw.yaml").write_text("local: {model_path: models/m.gguf}\n")
    runtime = compile_config(load_config(tmp_path / "gw.yaml", {}), {})
    assert runtime.local_servers["local"].settings.model_path == tmp_path / "models" / "m.gguf"


def test_two_local_servers_on_one_port() -> None:
    lines = compile_problems("""
local: {port: 41001}
providers:
  second: {kind: local, port: 41001}
""")
    # the built-in provider is added after the ones the file lists
    assert lines == ["providers.local.port: port 41001 is already used by "
                     "providers.second.port"]


def test_recompiling_keeps_unchanged_local_servers() -> None:
    first = compile_text("local: {context_window: 2048}\n")
    same = compile_config(parse_config("local: {context_window: 2048}\n"), {}, previous=first)
    assert same.local_servers["local"] is first.local_servers["local"]
    assert retired_local_servers(first, same) == []
    changed = compile_config(parse_config("local: {context_window: 1024}\n"), {},
                             previous=first)
    assert changed.local_servers["local"] is not first.local_servers["local"]
    assert retired_local_servers(first, changed) == [first.local_servers["local"]]


def test_runtime_mappings_are_read_only() -> None:
    runtime = compile_text("")
    with pytest.raises(TypeError):
        runtime.routes["x"] = runtime.routes["local"]  # type: ignore[index]


def test_check_config_on_the_examples() -> None:
    # The runnable example needs nothing from the environment (its simulator key is a file
    # next to it); the production one names each variable it needs.
    assert check_config(EXAMPLE, {}) == []
    lines = check_config(PRODUCTION, {})
    missing = sorted(line.split(": ", 1)[0] for line in lines)
    assert missing == ["providers.anthropic.api_key", "providers.gemini.api_key",
                       "providers.openai.api_key", "providers.openrouter.api_key",
                       "server.gateway_keys[0]"]
    env = {"TURNOUT_KEY": "t", "OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a",
           "GEMINI_API_KEY": "g", "OPENROUTER_API_KEY": "r"}
    assert check_config(PRODUCTION, env) == []


def test_check_config_reports_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("routes:\n  a: {targets: [{provider: ghost, model: m}]}\n")
    assert check_config(path, {}) == [
        "routes.a.targets[0].provider: unknown provider 'ghost' (configured: local)"]
    assert check_config(tmp_path / "missing.yaml", {})[0].startswith("cannot read config file")
    good = tmp_path / "good.yaml"
    good.write_text("providers:\n  box: {kind: vllm}\n")
    assert check_config(good, {}) == []


def test_routes_remember_whether_the_built_in_local_model_added_them() -> None:
    runtime = compile_text("""
providers:
  up: {kind: vllm}
routes:
  fast: {targets: [{provider: up, model: m}]}
  default: {targets: [{provider: up, model: m}]}
""")
    assert list(runtime.routes) == ["fast", "default", "local", "smollm2"]
    assert runtime.builtin_routes == ("local", "smollm2")  # `default` is the user's own
    assert runtime.describe_routes("gw.yaml") == (
        "routes: fast, default (gw.yaml); local, smollm2 "
        "(built-in local model; `local: false` to drop them)")
    off = compile_text("local: false\nproviders: {up: {kind: vllm}}\n"
                       "routes: {fast: {targets: [{provider: up, model: m}]}}\n")
    assert off.builtin_routes == ()
    assert off.describe_routes("gw.yaml") == "routes: fast (gw.yaml)"


def test_autodetected_routes_are_the_environments_not_built_in() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-a"}
    runtime = compile_config(load_config(None, env), env)
    assert runtime.builtin_routes == ("local", "default", "smollm2")
    summary = runtime.describe_routes(None)
    assert summary.startswith("routes: claude-")
    assert summary.endswith(" (provider keys in the environment); "
                            "local, default, smollm2 (built-in local model)")
