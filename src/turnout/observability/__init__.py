"""Observability: Prometheus metrics and structured JSON logs, fed by engine events."""
