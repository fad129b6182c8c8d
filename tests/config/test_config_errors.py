"""Every class of validation error names the key path and says what is wrong."""

from __future__ import annotations

import pytest

from turnout.config import ConfigError, parse_config


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_plain_string_secret_is_rejected_without_echoing_it() -> None:
    [line] = problems("providers:\n  openai: {kind: openai, api_key: sk-live-123}\n")
    assert line == ("providers.openai.api_key: expected {env: NAME} or {file: PATH}, "
                    "got a plain string")
    assert "sk-live-123" not in line


def test_secret_with_both_env_and_file() -> None:
    [line] = problems("server:\n  gateway_keys: [{env: A, file: b}]\n")
    assert line.startswith("server.gateway_keys[0]: ")
    assert "exactly one of env or file" in line


def test_secret_of_wrong_type() -> None:
    [line] = problems("server:\n  gateway_keys: [42]\n")
    assert line == "server.gateway_keys[0]: expected {env: NAME} or {file: PATH}, got a number"


@pytest.mark.parametrize(("text", "path", "key", "suggestion"), [
    ("servr: {}\n", "servr", "servr", "server"),
    ("server: {prot: 1}\n", "server.prot", "prot", "port"),
    ("providers:\n  openai: {kind: openai, api_kye: {env: K}}\n",
     "providers.openai.api_kye", "api_kye", "api_key"),
    ("server:\n  gateway_keys: [{envv: K}]\n", "server.gateway_keys[0].envv", "envv", "env"),
    ("router:\n  policy:\n    retry: {max_attempt_per_target: 3}\n",
     "router.policy.retry.max_attempt_per_target", "max_attempt_per_target",
     "max_attempts_per_target"),
    ("routes:\n  fast:\n    targets: [{provider: local, model: m, wieght: 2}]\n",
     "routes.fast.targets[0].wieght", "wieght", "weight"),
    ("routes:\n  r:\n    targets: [{provider: local, model: m}]\n"
     "    policy: {timeouts: {ttft: 3}}\n", "routes.r.policy.timeouts.ttft", "ttft", "ttft_s"),
    ("local: {contxt_window: 1024}\n", "local.contxt_window", "contxt_window",
     "context_window"),
])
def test_unknown_keys_at_every_depth(text: str, path: str, key: str, suggestion: str) -> None:
    [line] = problems(text)
    assert line.startswith(f"{path}: unknown key {key!r}")
    assert f"did you mean {suggestion!r}" in line


def test_unknown_key_lists_the_allowed_keys_of_that_provider_kind() -> None:
    [line] = problems("providers:\n  or:\n    kind: openrouter\n    titel: x\n")
    assert line.startswith("providers.or.titel: unknown key 'titel'")
    allowed = line.split("allowed keys: ")[1].split(", ")
    assert set(allowed) == {"kind", "api_key", "base_url", "headers", "referer", "title"}


def test_local_only_keys_are_unknown_for_a_hosted_provider() -> None:
    [line] = problems("providers:\n  openai: {kind: openai, model_path: x.gguf}\n")
    assert line.startswith("providers.openai.model_path: unknown key 'model_path'")


@pytest.mark.parametrize(("text", "expected"), [
    ("server: {port: abc}\n", "server.port: input should be a valid integer"),
    ("server: {port: 70000}\n", "server.port: input should be less than or equal to 65535"),
    ("server: {max_body_bytes: -1}\n", "server.max_body_bytes: input should be greater than 0"),
    ("routes:\n  fast:\n    targets: [{provider: local, model: m, weight: 0}]\n",
     "routes.fast.targets[0].weight: input should be greater than 0, got 0"),
    ("router:\n  policy:\n    balance: {strategy: random}\n",
     "router.policy.balance.strategy: input should be 'weighted', 'least_in_flight', "
     "'latency' or 'headroom', got 'random'"),
    ("router:\n  policy:\n    fallback_on: [rate_limited, flaky]\n",
     "router.policy.fallback_on[1]: input should be"),
    ("local: {start: eager}\n", "local.start: input should be 'lazy' or 'startup', got 'eager'"),
    ('models:\n  "openai/gpt-4.1": {context_window: zero}\n',
     'models."openai/gpt-4.1".context_window: input should be a valid integer'),
    ("routes:\n  r: {targets: []}\n", "routes.r.targets: expected at least 1 item"),
    ("routes:\n  r: {fallbacks: [x]}\n", "routes.r.targets: missing required key"),
    ("routes: [a, b]\n", "routes: input should be a valid dictionary"),
])
def test_bad_types_and_values(text: str, expected: str) -> None:
    lines = problems(text)
    assert any(line.startswith(expected) for line in lines), lines


def test_provider_kind_problems() -> None:
    lines = problems("providers:\n"
                     "  foo: {kind: nonsense}\n"
                     "  bar: {base_url: 'http://x'}\n"
                     "  baz: {kind: openai_compatible}\n"
                     "  qux: {kind: vllm, base_url: 'ftp://x'}\n")
    assert lines[0].startswith("providers.foo: unknown kind 'nonsense' (expected one of:")
    assert lines[1].startswith("providers.bar: missing required key 'kind' (one of: openai,")
    assert lines[2] == "providers.baz: base_url is required for kind 'openai_compatible'"
    assert lines[3] == "providers.qux.base_url: expected an http:// or https:// URL, got 'ftp://x'"


def test_unknown_provider_in_a_target() -> None:
    lines = problems("providers: {openai: {api_key: {env: K}}}\n"
                     "routes:\n  fast:\n    targets: [{provider: opnai, model: gpt-4o}]\n")
    assert lines == ["routes.fast.targets[0].provider: unknown provider 'opnai' "
                     "(configured: local, openai)"]


def test_unknown_fallback_route() -> None:
    lines = problems("routes:\n  fast:\n    targets: [{provider: local, model: m}]\n"
                     "    fallbacks: [local, slow]\n")
    assert lines == ["routes.fast.fallbacks[1]: unknown route 'slow'"]


def test_fallback_cycle_is_printed() -> None:
    lines = problems("""
routes:
  a: {targets: [{provider: local, model: m}], fallbacks: [b]}
  b: {targets: [{provider: local, model: m}], fallbacks: [c, local]}
  c: {targets: [{provider: local, model: m}], fallbacks: [a]}
  d: {targets: [{provider: local, model: m}], fallbacks: [a]}
""")
    assert lines == ["routes.a.fallbacks: fallback cycle a -> b -> c -> a"]


def test_self_fallback_is_a_cycle() -> None:
    lines = problems("routes:\n  a: {targets: [{provider: local, model: m}], fallbacks: [a]}\n")
    assert lines == ["routes.a.fallbacks: fallback cycle a -> a"]


def test_duplicate_target_ids() -> None:
    lines = problems("""
routes:
  a:
    targets:
      - {provider: local, model: m}
      - {provider: local, model: m}
  b:
    targets:
      - {provider: local, model: other, id: local/m}
""")
    assert lines == [
        "routes.a.targets[1]: duplicate target id 'local/m' in this route; "
        "give each target a distinct `id`",
        "routes.b.targets[0].id: id 'local/m' already names local/m at routes.a.targets[0]",
    ]


def test_same_model_twice_in_a_route_is_fine_with_distinct_ids() -> None:
    config = parse_config("""
routes:
  a:
    targets:
      - {provider: local, model: m, id: one}
      - {provider: local, model: m, id: two}
""")
    assert [t.deployment_id for t in config.routes["a"].targets] == ["one", "two"]


def test_model_override_keys() -> None:
    lines = problems("models:\n  nope/x: {}\n  noslash: {}\n")
    assert lines == [
        "models.nope/x: unknown provider 'nope' (configured: local)",
        "models.noslash: expected a '<provider>/<model>' key",
    ]


def test_bad_provider_name() -> None:
    [line] = problems('providers:\n  "my provider": {kind: ollama}\n')
    assert line.startswith('providers."my provider": provider names may use only')


def test_inconsistent_merged_policy_names_the_route() -> None:
    lines = problems("""
routes:
  r:
    targets: [{provider: local, model: m}]
    policy: {retry: {max_attempts_per_target: 9}, timeouts: {total_s: 10}}
""")
    assert lines == [
        "routes.r.policy.retry.max_attempts_per_target: 9 exceeds max_attempts_total (6)",
        "routes.r.policy.timeouts.per_attempt_s: 120 exceeds total_s (10)",
    ]


def test_yaml_syntax_error_has_a_line_number() -> None:
    [line] = problems("routes:\n  a: [1, 2\n")
    assert line.startswith("line 3, column 1: YAML syntax error")


def test_top_level_must_be_a_mapping() -> None:
    assert problems("- a\n- b\n") == ["(top level): expected a mapping of sections, got list"]


def test_error_message_collects_every_problem_with_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("server: {port: x, host: 1}\n", source="gw.yaml")
    text = str(info.value)
    assert text.startswith("invalid configuration in gw.yaml:\n")
    assert "  - server.port: " in text and "  - server.host: " in text


def test_local_block_and_a_provider_named_local_conflict() -> None:
    lines = problems("local: {context_window: 1024}\nproviders:\n  local: {kind: ollama}\n")
    assert lines == ["local: settings given both here and for the provider named 'local'; "
                     "keep one (or `local: false`)"]


def test_a_provider_named_local_replaces_the_built_in_one() -> None:
    config = parse_config("providers:\n  local: {kind: ollama}\n")
    assert config.providers["local"].kind == "ollama"
    assert config.routes == {}
