"""Tenants and their virtual keys: records, the store protocol and its SQL implementation."""
