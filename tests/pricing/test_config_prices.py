"""Prices through the config: one immutable price per compiled deployment."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from turnout.config import ConfigError, compile_config, parse_config
from turnout.core.response import Usage
from turnout.pricing import Price, cost

CONFIG = """
providers:
  openai: {}
  anthropic: {}
  box: {kind: vllm}
models:
  "openai/gpt-4o-mini": {price: {input: "0.20", output: "0.80", source: "our contract"}}
  "anthropic/claude-haiku-4-5": {price: null}
  "box/Qwen/Qwen2.5-7B-Instruct": {price: {input: "0", output: "0"}}
routes:
  a:
    targets:
      - {provider: openai, model: gpt-4o-mini}
      - {provider: openai, model: gpt-5}
      - {provider: anthropic, model: claude-haiku-4-5}
      - {provider: box, model: Qwen/Qwen2.5-7B-Instruct}
      - {provider: box, model: some-other-model}
"""
ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}


def prices() -> dict[str, Price | None]:
    runtime = compile_config(parse_config(CONFIG), ENV)
    return {d.id: d.info.price for d in runtime.routes["a"].deployments}


def test_each_deployment_gets_its_price() -> None:
    found = prices()
    mini = found["openai/gpt-4o-mini"]
    assert mini is not None and (mini.input, mini.source) == (Decimal("0.20"), "our contract")
    assert mini.cached_input is None  # a replaced row: nothing kept from the bundled one
    five = found["openai/gpt-5"]
    assert five is not None and five.cached_input == Decimal("0.125")  # bundled
    assert found["anthropic/claude-haiku-4-5"] is None  # cleared: unpriced
    qwen = found["box/Qwen/Qwen2.5-7B-Instruct"]
    assert qwen is not None and cost(Usage(10, 10), qwen).total == 0
    assert found["box/some-other-model"] is None  # self-hosted, not in any table


def test_compiled_prices_are_immutable() -> None:
    five = prices()["openai/gpt-5"]
    assert five is not None
    with pytest.raises(ValidationError):
        five.input = Decimal(0)  # type: ignore[misc]


@pytest.mark.parametrize(("price", "problem"), [
    ('{input: 0.5, output: "1"}', "price.input: write a price as a quoted decimal string"),
    ('{input: "1"}', "price.output: missing required key"),
    ('{input: "1", output: "1", per_request: "1"}', "price.per_request: unknown key"),
])
def test_bad_config_prices_name_their_path(price: str, problem: str) -> None:
    text = f'models:\n  "openai/gpt-5": {{price: {price}}}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert any(f"models.openai/gpt-5.{problem}" in p for p in info.value.problems)
