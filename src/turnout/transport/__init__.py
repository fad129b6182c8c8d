"""Pooled async HTTP to upstreams, and SSE parsing."""
