"""Pipeline stages, and the list a configuration asks for.

Each stage lives in a module of its own; `config_stages` is the one place that decides,
from the compiled config, which stages run and in what order (the order of
`shared/DESIGN.md`: authenticate, admit, reserve, cache, redact, route, execute, govern,
settle, emit). A stage the config does not use is not in the list at all.
"""

from __future__ import annotations

from turnout.config.runtime import RuntimeConfig
from turnout.engine.pipeline import Stage
from turnout.stages.static_keys import StaticKeys


def config_stages(runtime: RuntimeConfig) -> list[Stage]:
    """The stages `runtime` needs, in pipeline order."""
    stages: list[Stage] = []
    if runtime.server.gateway_keys:
        stages.append(StaticKeys(runtime.server.gateway_keys))
    return stages
