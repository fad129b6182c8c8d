"""Every example config, and every YAML config block in the README and docs, passes
`turnout check`; the fault JSON in docs/simulators.md is what the simulators accept.

A block whose first line is a `# fragment...` comment is a piece of a larger file (it names
providers declared elsewhere, or a key file only the reader has): it must still be valid
YAML, but it is not checked on its own.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import orjson
import pytest
import yaml

from turnout.cli import main
from turnout.sim.faults import Fault, FaultKind

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FRAGMENT = "# fragment"

PROVIDER_ENV = {name: f"test-{name.lower()}" for name in (
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY",
    "TURNOUT_KEY")}
"""What a user with provider keys has set: examples for the real providers need them."""

_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def yaml_blocks() -> list[pytest.ParameterSet]:
    blocks = []
    for doc in DOCS:
        text = doc.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(pytest.param(match.group(1), id=f"{doc.name}:{line}"))
    return blocks


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TURNOUT_GATEWAY_KEYS", "TURNOUT_CONFIG", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in PROVIDER_ENV.items():
        monkeypatch.setenv(name, value)


def test_the_examples_and_blocks_are_found() -> None:
    assert {p.name for p in EXAMPLES} >= {"turnout.yaml", "production.yaml"}
    blocks = yaml_blocks()
    assert len(blocks) >= 6
    checked = [b for b in blocks if not str(b.values[0]).startswith(FRAGMENT)]
    assert len(checked) > len(blocks) // 2  # fragments stay the exception


@pytest.mark.usefixtures("provider_env")
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_passes_turnout_check(example: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(example)]) == 0, capsys.readouterr().err


@pytest.mark.usefixtures("provider_env")
@pytest.mark.parametrize("block", yaml_blocks())
def test_every_config_block_in_the_docs_passes_turnout_check(
        block: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parsed = yaml.safe_load(block)
    assert isinstance(parsed, dict), "a config block is a mapping of sections"
    if block.startswith(FRAGMENT):
        return
    path = tmp_path / "block.yaml"
    path.write_text(block)
    assert main(["check", str(path)]) == 0, capsys.readouterr().err


def test_every_documented_fault_is_accepted() -> None:
    text = (ROOT / "docs" / "simulators.md").read_text()
    bodies = re.findall(r"-d '(\{\"kind\".*?|\[.*?)'$", text, re.MULTILINE)
    headers = re.findall(r"-H 'x-sim-fault: (.*?)'", text)
    faults = []
    for raw in [*bodies, *headers]:
        value = orjson.loads(raw)
        faults += [Fault.model_validate(v) for v in (value if isinstance(value, list)
                                                     else [value])]
    documented = {fault.kind for fault in faults}
    assert documented == set(typing.get_args(FaultKind))  # one example of every kind
