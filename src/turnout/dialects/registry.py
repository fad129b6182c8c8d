"""Look up a dialect by name. Imports lazily so that a process loads only what it uses."""

from __future__ import annotations

import importlib
from typing import cast

from turnout.dialects.base import Dialect

DIALECT_MODULES = {
    "openai_chat": "turnout.dialects.openai_chat",
    "anthropic_messages": "turnout.dialects.anthropic_messages",
    "gemini": "turnout.dialects.gemini",
}


def get_dialect(name: str) -> Dialect:
    """The dialect instance called `name`; raises KeyError for an unknown name."""
    module = importlib.import_module(DIALECT_MODULES[name])
    return cast(Dialect, module.DIALECT)
