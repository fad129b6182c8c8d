"""`tenancy.master_keys` and `tenancy.byok_providers`: decoded and checked with errors that
say how to make a key (and never quote one), scrubbed like every other secret."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from turnout.config import ConfigError, RuntimeConfig, compile_config, parse_config
from turnout.config.compile import compile_tenancy

KEY = os.urandom(32)
URLSAFE = base64.urlsafe_b64encode(KEY).decode()
STANDARD = base64.b64encode(KEY).decode()
BASE = """
local: false
providers:
  openai: {}
  anthropic: {}
  box: {kind: local, model_path: MODEL}
routes:
  r: {targets: [{provider: openai, model: gpt-4o}]}
"""
ENV = {"OPENAI_API_KEY": "sk-env-0123456789abcdef", "ANTHROPIC_API_KEY": "sk-ant-0123456789ab"}


def config(tenancy: str, tmp_path: Path) -> str:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    return BASE.replace("MODEL", str(model)) + f"tenancy:\n{tenancy}"


def compiled(tenancy: str, tmp_path: Path, **env: str) -> RuntimeConfig:
    return compile_config(parse_config(config(tenancy, tmp_path)), {**ENV, **env})


def problems(tenancy: str, tmp_path: Path, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        compiled(tenancy, tmp_path, **env)
    return info.value.problems


TWO_KEYS = "  master_keys: [{id: k2, key: {env: MK2}}, {id: k1, key: {file: k1.key}}]\n"


def test_master_keys_in_either_base64_first_one_current(tmp_path: Path) -> None:
    (tmp_path / "k1.key").write_text(STANDARD.rstrip("=") + "\n")
    second = os.urandom(32)
    text = config(TWO_KEYS.replace("k1.key", str(tmp_path / "k1.key")), tmp_path)
    runtime = compile_config(parse_config(text),
                             {**ENV, "MK2": base64.urlsafe_b64encode(second).decode()})
    tenancy = runtime.tenancy
    assert tenancy is not None
    assert [(k.id, k.key) for k in tenancy.master_keys] == [("k2", second), ("k1", KEY)]
    assert tenancy.byok_providers == {"openai", "anthropic"}  # local providers never
    assert URLSAFE not in repr(tenancy) and STANDARD not in repr(tenancy)


def test_master_keys_are_scrubbed_in_every_spelling(tmp_path: Path) -> None:
    runtime = compiled("  master_keys: [{id: k1, key: {env: MK}}]\n", tmp_path, MK=URLSAFE)
    for text in (URLSAFE, STANDARD, URLSAFE.rstrip("="), URLSAFE[:12]):
        assert runtime.scrubber.scrub(f"key {text} end") == "key [redacted] end"


@pytest.mark.parametrize(("value", "says"), [
    (base64.b64encode(os.urandom(16)).decode(), "decodes to 16 bytes"),
    (os.urandom(32).hex(), "decodes to 48 bytes"),
    ("%%Qz!nonsense-value~~", "is not base64"),
])
def test_a_bad_master_key_says_how_to_make_one(tmp_path: Path, value: str, says: str) -> None:
    found = problems("  master_keys: [{id: k1, key: {env: MK}}]\n", tmp_path, MK=value)
    assert len(found) == 1
    assert found[0].startswith("tenancy.master_keys[0].key: ") and says in found[0]
    assert "os.urandom(32)" in found[0]
    assert value not in found[0] and value[:8] not in found[0]


def test_an_unset_master_key_names_its_variable(tmp_path: Path) -> None:
    found = problems("  master_keys: [{id: k1, key: {env: MK}}]\n", tmp_path)
    assert found == ["tenancy.master_keys[0].key: environment variable MK is not set"]


@pytest.mark.parametrize(("tenancy", "says"), [
    ("  master_keys: [{id: k1, key: {env: MK}}, {id: k1, key: {env: MK}}]\n", "unique"),
    ("  master_keys: [{id: 'bad id', key: {env: MK}}]\n", "pattern"),
    ("  master_keys: [{id: k1, key: {env: MK}, extra: 1}]\n", "extra"),
])
def test_master_key_entries_are_validated(tmp_path: Path, tenancy: str, says: str) -> None:
    found = problems(tenancy, tmp_path, MK=URLSAFE)
    assert any(says in p.lower() and "master_keys" in p for p in found), found


def test_byok_providers_name_configured_remote_providers(tmp_path: Path) -> None:
    keys = "  master_keys: [{id: k1, key: {env: MK}}]\n"
    runtime = compiled(keys + "  byok_providers: [openai]\n", tmp_path, MK=URLSAFE)
    assert runtime.tenancy is not None and runtime.tenancy.byok_providers == {"openai"}
    found = problems(keys + "  byok_providers: [openai, box, nope]\n", tmp_path, MK=URLSAFE)
    assert found == [
        "tenancy.byok_providers[1]: 'box' is a local provider (tenants may bring keys for: "
        "anthropic, openai)",
        "tenancy.byok_providers[2]: 'nope' is not a configured provider (tenants may bring "
        "keys for: anthropic, openai)"]
    found = problems("  byok_providers: [openai]\n", tmp_path)
    assert found == ["tenancy.byok_providers: tenants' provider keys need "
                     "tenancy.master_keys to seal them"]


def test_without_master_keys_nobody_brings_keys(tmp_path: Path) -> None:
    runtime = compiled("  key_cache_s: 1\n", tmp_path)
    assert runtime.tenancy is not None
    assert runtime.tenancy.master_keys == () and runtime.tenancy.byok_providers == set()


def test_the_tenancy_section_compiles_alone(tmp_path: Path) -> None:
    """`turnout tenancy reencrypt` needs the master keys, not every provider's key."""
    parsed = parse_config(config("  master_keys: [{id: k1, key: {env: MK}}]\n", tmp_path))
    tenancy = compile_tenancy(parsed, {"MK": URLSAFE})  # no provider key set
    assert [k.id for k in tenancy.master_keys] == ["k1"]
    with pytest.raises(ConfigError, match="no tenancy section"):
        compile_tenancy(parse_config(BASE.replace("MODEL", "x")), {})
