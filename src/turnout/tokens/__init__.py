"""Offline token counting: tiktoken encodings shipped with Turnout (checked by SHA-256),
exact counts for OpenAI models and documented estimates for the others."""

from turnout.tokens.count import TokenCount, TokenCounter, counter_for, family_for
from turnout.tokens.encodings import EncodingError, get_encoding

__all__ = ["EncodingError", "TokenCount", "TokenCounter", "counter_for", "family_for",
           "get_encoding"]
