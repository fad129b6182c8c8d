"""The engine: route, execute with resilience, and report, over the canonical model."""
