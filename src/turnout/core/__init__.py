"""Canonical, dialect-free representation of requests, responses, stream events and errors."""
