"""The embedded local model (llama.cpp via xllamacpp), served on a loopback port."""

from turnout.local.model import BUNDLED_MODEL_NAME, bundled_model_path
from turnout.local.server import LocalModelServer, LocalServerSettings

__all__ = ["BUNDLED_MODEL_NAME", "LocalModelServer", "LocalServerSettings", "bundled_model_path"]
